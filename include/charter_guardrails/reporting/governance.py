"""What the governance view shows, computed from the ledger: overviews, run reports, incident
deadlines and the charter report for the Comité de la Gouvernance Numérique.

Kept apart from the Airflow plugin (which only renders) so that it is unit-testable and usable
from the CLI. It never imports airflow. Everything returned is JSON-safe and carries no raw
personal value: the ledger holds none, and :func:`mask_personal_values` masks anything that looks
like one before it is shown, as a second line of defence.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charter_guardrails.core.results import PRINCIPLES, Verdict, worst
from charter_guardrails.core.settings import ConfigError, get_settings
from charter_guardrails.ledger.models import (
    Approval,
    AuditEvent,
    CheckResultRecord,
    CheckRun,
    DatasetRecord,
    Incident,
    Manifest,
    ManifestVerification,
    ModelVersion,
    PiiFinding,
)

ENGAGEMENTS_FILE = Path(__file__).with_name("engagements.yaml")

#: Run decisions that wait for a human (the gate's "needs approval").
PENDING_DECISIONS = frozenset({"needs_approval", "needs_override", "awaiting_approval", "pending_approval"})
#: Approval decisions that set a failing guardrail aside (Maîtrise humaine 2).
OVERRIDE_DECISIONS = frozenset({"override", "overridden"})

_VERDICT_RANK = {"pass": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class Engagement:
    """One engagement of the charter and the controls (check names) that enforce it."""

    id: str
    principle: str
    principle_label: str
    number: int
    text: str
    controls: tuple[str, ...]
    sources: tuple[str, ...]
    #: breach types of the incidents that count as evidence (all when empty)
    incident_types: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "principle": self.principle,
            "principle_label": self.principle_label,
            "number": self.number,
            "text": self.text,
            "controls": list(self.controls),
            "sources": list(self.sources),
            "incident_types": list(self.incident_types),
        }


@functools.lru_cache(maxsize=1)
def load_engagements(path: Path = ENGAGEMENTS_FILE) -> tuple[Engagement, ...]:
    """The charter's engagements, in principle order; a malformed file is a config error naming the key."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    principles = raw.get("principles") if isinstance(raw, dict) else None
    if not isinstance(principles, dict):
        raise ConfigError(f"{path}: principles: required mapping is missing")
    out: list[Engagement] = []
    for principle, body in principles.items():
        if principle not in PRINCIPLES:
            raise ConfigError(f"{path}: principles.{principle}: unknown principle; expected one of {PRINCIPLES}")
        for i, item in enumerate(body.get("engagements", [])):
            try:
                number = int(item["number"])
                out.append(
                    Engagement(
                        id=f"{principle}.{number}",
                        principle=principle,
                        principle_label=str(body.get("label", principle)),
                        number=number,
                        text=str(item["text"]),
                        controls=tuple(item.get("controls") or ()),
                        sources=tuple(item.get("sources") or ()),
                        incident_types=tuple(item.get("incident_types") or ()),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{path}: principles.{principle}.engagements[{i}]: {exc!r}") from exc
    ids = [e.id for e in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: engagement ids must be unique, got {ids}")
    return tuple(out)


def principle_labels() -> dict[str, str]:
    return {e.principle: e.principle_label for e in load_engagements()}


def principle_of(engagement_id: str) -> str:
    """``"surete.2"`` → ``"surete"``."""
    return engagement_id.partition(".")[0]


# --- masking (defence in depth) -------------------------------------------------------------------

_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\d*])(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")
_NIR = re.compile(
    r"(?<![\d*])[12]\s?\d{2}\s?(?:0[1-9]|1[0-2]|[2-9]\d)\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}(?:\s?\d{2})?(?!\d)"
)
_IBAN = re.compile(r"\bFR\d{2}(?:\s?[0-9A-Z]{4}){5}\s?[0-9A-Z]{3}\b")


def _mask_digits(match: re.Match[str]) -> str:
    value = match.group(0)
    digits = [i for i, c in enumerate(value) if c.isdigit()]
    keep = set(digits[:2] + digits[-2:])
    return "".join(c if (not c.isdigit() or i in keep) else "*" for i, c in enumerate(value))


def mask_personal_values(text: str) -> str:
    """Mask e-mails, French phone numbers, NIR and IBAN in ``text`` (``06 ** ** ** 78``).

    The ledger never stores raw personal values; this catches a check that would leak one into
    a summary or an evidence string, so the UI never shows it.
    """
    if not text or not any(c.isdigit() or c == "@" for c in text):
        return text
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@***", text)
    text = _IBAN.sub(lambda m: m.group(0)[:4] + " **** **** ****", text)
    text = _NIR.sub(_mask_digits, text)
    return _PHONE.sub(_mask_digits, text)


def mask_tree(value: Any) -> Any:
    """:func:`mask_personal_values` applied to every string of a JSON tree."""
    if isinstance(value, str):
        return mask_personal_values(value)
    if isinstance(value, dict):
        return {str(k): mask_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_tree(v) for v in value]
    return value


# --- rows as dicts -----------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def run_dict(run: CheckRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "use_case": run.use_case,
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "decision": run.decision,
        "blocked_by": list(run.blocked_by or []),
        "reports": mask_tree(run.reports or {}),
    }


def result_dict(row: CheckResultRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "check_run_id": row.check_run_id,
        "check": row.check,
        "dataset": row.dataset or None,
        "verdict": row.verdict,
        "severity": row.severity,
        "engagements": list(row.engagements or []),
        "summary": mask_personal_values(row.summary),
        "metrics": dict(row.metrics or {}),
        "evidence": mask_tree(row.evidence or {}),
        "report_path": row.report_path,
        "created_at": _iso(row.created_at),
    }


def finding_dict(row: PiiFinding) -> dict[str, Any]:
    # masked_examples are masked by the scanner; masked again here in case a raw one slipped in.
    return {
        "column": row.column,
        "entity_type": row.entity_type,
        "count": row.count,
        "share": row.share,
        "mean_score": row.mean_score,
        "max_score": row.max_score,
        "allowed": row.allowed,
        "masked_examples": [mask_personal_values(str(e)) for e in (row.masked_examples or [])],
    }


def time_left(deadline: datetime, now: datetime | None = None) -> dict[str, Any]:
    """Time left on the GDPR Art. 33 72-hour deadline, with a French label."""
    now = now or datetime.now(UTC)
    seconds = int((deadline - now).total_seconds())
    hours, minutes = divmod(abs(seconds) // 60, 60)
    span = f"{hours} h {minutes:02d} min"
    return {
        "seconds": seconds,
        "overdue": seconds < 0,
        "label": f"dépassé de {span}" if seconds < 0 else f"{span} restantes",
    }


def incident_dict(row: Incident, now: datetime | None = None) -> dict[str, Any]:
    """Every GDPR Art. 33(3) field of an incident, and the time left to notify."""
    data = {
        "id": row.id,
        "key": row.key,
        "breach_type": row.breach_type,
        "severity": row.severity,
        "use_case": row.use_case,
        "dataset": row.dataset,
        "run_id": row.run_id,
        "title": mask_personal_values(row.title),
        "status": row.status,
        "nature": mask_personal_values(row.nature),
        "facts": mask_tree(row.facts or {}),
        "data_subject_categories": list(row.data_subject_categories or []),
        "approx_data_subjects": row.approx_data_subjects,
        "personal_data_categories": list(row.personal_data_categories or []),
        "approx_records": row.approx_records,
        "likely_consequences": mask_personal_values(row.likely_consequences),
        "measures_taken": mask_tree(list(row.measures_taken or [])),
        "dpo_contact": row.dpo_contact,
        "detected_at": _iso(row.detected_at),
        "notify_deadline": _iso(row.notify_deadline),
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at": _iso(row.acknowledged_at),
        "resolved_by": row.resolved_by,
        "resolved_at": _iso(row.resolved_at),
        "comments": mask_tree(list(row.comments or [])),
    }
    data["time_left"] = None if row.status == "resolved" else time_left(row.notify_deadline, now)
    return data


def model_dict(row: ModelVersion) -> dict[str, Any]:
    return {
        "id": row.id,
        "use_case": row.use_case,
        "version": row.version,
        "run_id": row.run_id,
        "status": row.status,
        "metrics": dict(row.metrics or {}),
        "artifact_sha256": row.artifact_sha256,
        "card_path": row.card_path,
        "approved_by": row.approved_by,
        "suspended": bool(row.suspended),
        "suspended_by": row.suspended_by,
        "suspended_at": _iso(row.suspended_at),
        "suspend_reason": row.suspend_reason,
        "created_at": _iso(row.created_at),
    }


def approval_dict(row: Approval) -> dict[str, Any]:
    return {
        "id": row.id,
        "use_case": row.use_case,
        "run_id": row.run_id,
        "decision": row.decision,
        "actor": row.actor,
        "justification": mask_personal_values(row.justification or ""),
        "overridden_checks": list(row.overridden_checks or []),
        "decided_at": _iso(row.decided_at),
    }


# --- overview ------------------------------------------------------------------------------------------


def use_cases(session: Session) -> list[str]:
    """Use cases known to the ledger or declared by a policy file."""
    names = set(session.scalars(select(CheckRun.use_case).distinct()))
    names |= set(session.scalars(select(Incident.use_case).distinct()))
    names |= set(session.scalars(select(ModelVersion.use_case).distinct()))
    policies_dir = get_settings().policies_dir
    if policies_dir.is_dir():
        names |= {p.stem for p in policies_dir.glob("*.yaml")}
    return sorted(names)


def latest_results(session: Session, use_case: str) -> list[tuple[CheckResultRecord, CheckRun]]:
    """The most recent result of each (check, dataset) of a use case."""
    rows = session.execute(
        select(CheckResultRecord, CheckRun)
        .join(CheckRun, CheckResultRecord.check_run_id == CheckRun.id)
        .where(CheckRun.use_case == use_case)
        .order_by(CheckResultRecord.created_at.desc(), CheckResultRecord.id.desc())
    ).all()
    seen: set[tuple[str, str]] = set()
    latest: list[tuple[CheckResultRecord, CheckRun]] = []
    for result, run in rows:
        key = (result.check, result.dataset or "")
        if key not in seen:
            seen.add(key)
            latest.append((result, run))
    return latest


def pending_approvals(session: Session, use_case: str | None = None) -> list[dict[str, Any]]:
    """Runs whose gate asked for a human decision that has not been recorded yet."""
    query = select(CheckRun).where(CheckRun.decision.in_(sorted(PENDING_DECISIONS)))
    if use_case:
        query = query.where(CheckRun.use_case == use_case)
    decided = {(a.use_case, a.run_id) for a in session.scalars(select(Approval))}
    return [
        run_dict(r)
        for r in session.scalars(query.order_by(CheckRun.started_at.desc()))
        if (r.use_case, r.run_id) not in decided
    ]


def use_case_overview(session: Session, use_case: str, now: datetime | None = None) -> dict[str, Any]:
    """Latest verdict per charter principle, open incidents, production model, pending approvals."""
    labels = principle_labels()
    principles: dict[str, dict[str, Any]] = {
        p: {"label": labels.get(p, p), "verdict": None, "checks": []} for p in PRINCIPLES
    }
    for result, run in latest_results(session, use_case):
        for principle in sorted({principle_of(e) for e in (result.engagements or [])}):
            if principle not in principles:
                continue
            entry = principles[principle]
            entry["checks"].append(
                {
                    "check": result.check,
                    "dataset": result.dataset or None,
                    "verdict": result.verdict,
                    "run_pk": run.id,
                    "run_id": run.run_id,
                    "at": _iso(result.created_at),
                }
            )
            entry["verdict"] = worst([Verdict(c["verdict"]) for c in entry["checks"]]).value
    incidents = session.scalars(
        select(Incident)
        .where(Incident.use_case == use_case, Incident.status != "resolved")
        .order_by(Incident.detected_at.desc())
    )
    production = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.use_case == use_case, ModelVersion.status == "production")
        .order_by(ModelVersion.version.desc())
    ).first()
    last_run = session.scalars(
        select(CheckRun).where(CheckRun.use_case == use_case).order_by(CheckRun.started_at.desc(), CheckRun.id.desc())
    ).first()
    return {
        "use_case": use_case,
        "principles": principles,
        "open_incidents": [incident_dict(i, now) for i in incidents],
        "production_model": model_dict(production) if production else None,
        "pending_approvals": pending_approvals(session, use_case),
        "last_run": run_dict(last_run) if last_run else None,
    }


def recent_runs(session: Session, *, use_case: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    query = select(CheckRun)
    if use_case:
        query = query.where(CheckRun.use_case == use_case)
    runs = list(session.scalars(query.order_by(CheckRun.started_at.desc(), CheckRun.id.desc()).limit(limit)))
    counts: dict[int, dict[str, int]] = {}
    if runs:
        for run_id, verdict, n in session.execute(
            select(CheckResultRecord.check_run_id, CheckResultRecord.verdict, func.count())
            .where(CheckResultRecord.check_run_id.in_([r.id for r in runs]))
            .group_by(CheckResultRecord.check_run_id, CheckResultRecord.verdict)
        ):
            counts.setdefault(run_id, {})[verdict] = n
    return [{**run_dict(r), "verdicts": counts.get(r.id, {})} for r in runs]


# --- run report ------------------------------------------------------------------------------------------


def find_check_run(session: Session, *, dag_id: str, run_id: str) -> CheckRun | None:
    return session.scalars(select(CheckRun).where(CheckRun.dag_id == dag_id, CheckRun.run_id == run_id)).first()


def find_check_run_for(session: Session, use_case: str, run_id: str) -> int | None:
    """The ledger id of the run of ``use_case`` with Airflow ``run_id`` (incidents know only these)."""
    return session.scalars(select(CheckRun.id).where(CheckRun.use_case == use_case, CheckRun.run_id == run_id)).first()


def run_report(session: Session, check_run_id: int, now: datetime | None = None) -> dict[str, Any] | None:
    """Every result of a run with its evidence, PII findings (masked), incidents and human decisions."""
    run = session.get(CheckRun, check_run_id)
    if run is None:
        return None
    rows = list(
        session.scalars(
            select(CheckResultRecord).where(CheckResultRecord.check_run_id == run.id).order_by(CheckResultRecord.id)
        )
    )
    findings: dict[int, list[dict[str, Any]]] = {}
    if rows:
        for f in session.scalars(
            select(PiiFinding).where(PiiFinding.check_result_id.in_([r.id for r in rows])).order_by(PiiFinding.id)
        ):
            findings.setdefault(f.check_result_id, []).append(finding_dict(f))
    results = []
    for row in rows:
        data = result_dict(row)
        data["pii_findings"] = findings.get(row.id, [])
        data["sections"] = evidence_sections(data["evidence"], data["metrics"])
        results.append(data)
    incidents = session.scalars(
        select(Incident).where(Incident.use_case == run.use_case, Incident.run_id == run.run_id).order_by(Incident.id)
    )
    approvals = session.scalars(
        select(Approval).where(Approval.use_case == run.use_case, Approval.run_id == run.run_id).order_by(Approval.id)
    )
    verdicts = [Verdict(r["verdict"]) for r in results]
    return {
        "run": run_dict(run),
        "verdict": worst(verdicts).value if verdicts else None,
        "results": results,
        "failed": [r for r in results if r["verdict"] == "fail"],
        "incidents": [incident_dict(i, now) for i in incidents],
        "approvals": [approval_dict(a) for a in approvals],
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


_DRIFT_SCORES = (("psi", "psi_max"), ("js_distance", "js_max"), ("length_psi", "text_length_psi_max"))
_HISTOGRAM_KEYS = {
    "histogram",
    "bins",
    "categories",
    "edges",
    "reference",
    "current",
    "batch",
    "reference_counts",
    "current_counts",
    "reference_shares",
    "batch_shares",
}


def drift_features(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-feature drift from ``evidence["features"]`` (a mapping, or a list with ``feature``/``name``).

    Each row keeps the feature's statistics, its main score (PSI, Jensen-Shannon distance or text
    length PSI) with the policy threshold from ``evidence["thresholds"]``, and a histogram when the
    check stored one (``bins`` with ``reference`` and ``current`` counts or shares).
    """
    raw = evidence.get("features")
    if isinstance(raw, dict):
        items = [{"feature": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in raw.items()]
    elif isinstance(raw, list):
        items = [dict(v) for v in raw if isinstance(v, dict)]
        for item in items:
            item.setdefault("feature", item.get("name") or item.get("column"))
    else:
        return []
    given = evidence.get("thresholds")
    thresholds: dict[str, Any] = given if isinstance(given, dict) else {}
    out = []
    for item in items:
        nested = item.get("histogram")
        hist: dict[str, Any] = nested if isinstance(nested, dict) else item
        bins = hist.get("bins") or hist.get("categories") or hist.get("edges")
        reference = hist.get("reference") or hist.get("reference_counts") or hist.get("reference_shares")
        current = hist.get("current") or hist.get("batch") or hist.get("current_counts") or hist.get("batch_shares")
        histogram = None
        if (
            isinstance(bins, list)
            and isinstance(reference, list)
            and isinstance(current, list)
            and reference
            and current
        ):
            n = min(len(reference), len(current))
            labels = [str(b) for b in bins][:n] if len(bins) >= n else [str(i) for i in range(n)]
            histogram = {
                "bins": labels,
                "reference": [_number(v) or 0.0 for v in reference[:n]],
                "current": [_number(v) or 0.0 for v in current[:n]],
            }
        score = next(
            (
                (name, _number(item.get(name)), _number(thresholds.get(limit)))
                for name, limit in _DRIFT_SCORES
                if _number(item.get(name)) is not None
            ),
            None,
        )
        out.append(
            {
                "feature": str(item.get("feature")),
                "stats": {k: v for k, v in item.items() if k not in _HISTOGRAM_KEYS},
                "histogram": histogram,
                "drifted": bool(item.get("drifted")),
                "score": {"name": score[0], "value": score[1], "threshold": score[2]} if score else None,
            }
        )
    return out


def group_shares(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """Group shares against the reference: ``[{column, groups: [{group, share, reference, gap_pp}]}]``.

    Accepts the representativeness check's ``evidence["group_columns"]`` (``[{column, groups: {group: {share,
    reference_share, gap_pp}}}]``), ``evidence["groups"]`` as ``{column: {group: {share, reference}}}`` or
    ``{column: [{group, share, reference}]}``, or a flat list with a ``column`` key.
    """
    raw = evidence.get("group_columns") or evidence.get("groups") or evidence.get("group_shares")
    columns: dict[str, list[dict[str, Any]]] = {}
    if isinstance(raw, list) and all(isinstance(c, dict) and isinstance(c.get("groups"), dict) for c in raw):
        # The representativeness check: [{column, groups: {group: {count, share, reference_share, gap_pp}}}]
        raw = {str(c.get("column")): c["groups"] for c in raw}
    if isinstance(raw, dict):
        for column, groups in raw.items():
            if isinstance(groups, dict):
                columns[str(column)] = [
                    {"group": g, **(v if isinstance(v, dict) else {"share": v})} for g, v in groups.items()
                ]
            elif isinstance(groups, list):
                columns[str(column)] = [dict(g) for g in groups if isinstance(g, dict)]
    elif isinstance(raw, list):
        for g in raw:
            if isinstance(g, dict):
                columns.setdefault(str(g.get("column", "groupe")), []).append(dict(g))
    out = []
    for column, groups in columns.items():
        rows = []
        for g in groups:
            share = _number(g.get("share", g.get("observed")))
            reference = _number(g.get("reference", g.get("reference_share", g.get("expected"))))
            if share is None:
                continue
            gap = _number(g.get("gap_pp"))
            if gap is None and reference is not None:
                gap = round((share - reference) * 100, 2)
            rows.append(
                {
                    "group": str(g.get("group", g.get("name", "?"))),
                    "share": share,
                    "reference": reference,
                    "gap_pp": gap,
                    "count": g.get("count"),
                }
            )
        if rows:
            out.append({"column": column, "groups": rows})
    return out


def fairness_table(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the per-group fairness table (the fairness check's ``evidence["table"]``, or ``fairness`` / ``by_group``)."""
    raw = evidence.get("table") or evidence.get("fairness") or evidence.get("by_group")
    if isinstance(raw, dict) and isinstance(raw.get("by_group"), list | dict):
        raw = raw["by_group"]
    if isinstance(raw, dict):
        return [{"group": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in raw.items()]
    if isinstance(raw, list):
        return [dict(r) for r in raw if isinstance(r, dict)]
    return []


_ENERGY_KEYS = ("kwh", "energy_kwh", "energy_consumed_kwh")


def energy(metrics: dict[str, Any], evidence: dict[str, Any]) -> dict[str, Any] | None:
    """Energy (kWh), emissions (g CO₂e) and gain per kWh when the check measured them (the footprint check's metrics)."""
    footprint = evidence.get("footprint")
    merged = {**(footprint if isinstance(footprint, dict) else {}), **evidence, **metrics}
    kwh = next((_number(merged[k]) for k in _ENERGY_KEYS if _number(merged.get(k)) is not None), None)
    grams = _number(merged.get("gco2e"))
    if grams is None:
        kilograms = next(
            (_number(merged[k]) for k in ("emissions_kg", "co2_kg") if _number(merged.get(k)) is not None), None
        )
        grams = kilograms * 1000 if kilograms is not None else None
    if kwh is None and grams is None:
        return None
    return {
        "energy_kwh": kwh,
        "gco2e": grams,
        "gain": _number(merged.get("gain")),
        "gain_per_kwh": _number(merged.get("gain_per_kwh")),
        "method": merged.get("energy_method"),
    }


def evidence_sections(evidence: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """The specific sections the run report draws, when their keys exist in the evidence."""
    return {
        "drift": drift_features(evidence),
        "groups": group_shares(evidence),
        "fairness": fairness_table(evidence),
        "energy": energy(metrics, evidence),
    }


# --- pass rates, manifests, audit ---------------------------------------------------------------------------


def pass_rates(
    session: Session, *, start: datetime, end: datetime, use_case: str | None = None
) -> list[dict[str, Any]]:
    """Per day: results that passed, warned and failed."""
    query = select(CheckResultRecord.created_at, CheckResultRecord.verdict).where(
        CheckResultRecord.created_at >= start, CheckResultRecord.created_at < end
    )
    if use_case:
        query = query.join(CheckRun, CheckResultRecord.check_run_id == CheckRun.id).where(CheckRun.use_case == use_case)
    days: dict[date, dict[str, int]] = {}
    for created_at, verdict in session.execute(query):
        day = days.setdefault(created_at.astimezone(UTC).date(), {"pass": 0, "warn": 0, "fail": 0})
        day[verdict] = day.get(verdict, 0) + 1
    out = []
    for day_, counts in sorted(days.items()):
        total = sum(counts.values())
        out.append(
            {"day": day_.isoformat(), **counts, "total": total, "pass_rate": counts["pass"] / total if total else None}
        )
    return out


def manifests_by_dataset(session: Session) -> list[dict[str, Any]]:
    """Each dataset with its manifests and its verification history (newest first)."""
    out = []
    for ds in session.scalars(select(DatasetRecord).order_by(DatasetRecord.use_case, DatasetRecord.name)):
        manifests = [
            {
                "id": m.id,
                "run_id": m.run_id,
                "file_name": m.file_name,
                "size_bytes": m.size_bytes,
                "row_count": m.row_count,
                "algorithm": m.algorithm,
                "merkle_root": m.merkle_root,
                "key_id": m.key_id,
                "status": m.status,
                "created_at": _iso(m.created_at),
            }
            for m in session.scalars(
                select(Manifest).where(Manifest.dataset_id == ds.id).order_by(Manifest.created_at.desc())
            )
        ]
        verifications = [
            {
                "id": v.id,
                "manifest_id": v.manifest_id,
                "run_id": v.run_id,
                "outcome": v.outcome,
                "details": mask_tree(v.details or {}),
                "verified_at": _iso(v.verified_at),
            }
            for v in session.scalars(
                select(ManifestVerification)
                .where(ManifestVerification.dataset_id == ds.id)
                .order_by(ManifestVerification.verified_at.desc())
                .limit(100)
            )
        ]
        out.append(
            {
                "id": ds.id,
                "use_case": ds.use_case,
                "name": ds.name,
                "format": ds.format,
                "personal_data": ds.personal_data,
                "manifests": manifests,
                "verifications": verifications,
            }
        )
    return out


def audit_events(session: Session, *, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
    query = select(AuditEvent)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    return [
        {
            "seq": e.seq,
            "ts": _iso(e.ts),
            "actor": e.actor,
            "action": e.action,
            "subject_type": e.subject_type,
            "subject_id": e.subject_id,
            "use_case": e.use_case,
            "run_id": e.run_id,
            "payload": mask_tree(e.payload or {}),
            "hash": e.hash,
        }
        for e in session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit))
    ]


# --- the charter report ------------------------------------------------------------------------------------


def parse_period(start: str | None, end: str | None, *, default_days: int = 183) -> tuple[datetime, datetime]:
    """A [start, end) period in UTC from ISO dates; by default the last six months (the Comité meets twice a year)."""
    try:
        end_dt = datetime.fromisoformat(end).replace(tzinfo=UTC) + timedelta(days=1) if end else datetime.now(UTC)
        start_dt = datetime.fromisoformat(start).replace(tzinfo=UTC) if start else end_dt - timedelta(days=default_days)
    except ValueError as exc:
        raise ConfigError(f"invalid period: {exc}; use dates like 2026-01-31") from exc
    if start_dt >= end_dt:
        raise ConfigError("the period starts after it ends")
    return start_dt, end_dt


def charter_report(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    chain: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Each of the charter's engagements with its controls and the evidence from runs in [start, end).

    Evidence of an engagement: the results of checks that declare it (``engagements``) or that are
    one of its controls, counted by verdict, the last run and the failures; the overrides of those
    checks; and, per the engagement's ``sources``, approvals, incidents, audit events and model versions.
    """
    results = session.execute(
        select(CheckResultRecord, CheckRun)
        .join(CheckRun, CheckResultRecord.check_run_id == CheckRun.id)
        .where(CheckResultRecord.created_at >= start, CheckResultRecord.created_at < end)
        .order_by(CheckResultRecord.created_at, CheckResultRecord.id)
    ).all()
    approvals = list(session.scalars(select(Approval).where(Approval.decided_at >= start, Approval.decided_at < end)))
    incidents = list(session.scalars(select(Incident).where(Incident.detected_at >= start, Incident.detected_at < end)))
    audit_count = (
        session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.ts >= start, AuditEvent.ts < end))
        or 0
    )
    models = list(session.scalars(select(ModelVersion).where(ModelVersion.created_at < end)))
    runs_in_period = {run.id for _, run in results}

    engagements = []
    for eng in load_engagements():
        controls = set(eng.controls)
        matched = [(r, run) for r, run in results if eng.id in (r.engagements or []) or r.check in controls]
        counts = {"pass": 0, "warn": 0, "fail": 0}
        for r, _ in matched:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        checks_seen = {r.check for r, _ in matched}
        overrides = [
            a
            for a in approvals
            if a.decision in OVERRIDE_DECISIONS
            and ("overrides" in eng.sources or set(a.overridden_checks or []) & (controls | checks_seen))
        ]
        last = matched[-1] if matched else None
        evidence: dict[str, Any] = {
            "results": len(matched),
            "runs": len({run.id for _, run in matched}),
            **counts,
            "checks": sorted(checks_seen),
            "last_run": {
                "run_pk": last[1].id,
                "use_case": last[1].use_case,
                "dag_id": last[1].dag_id,
                "run_id": last[1].run_id,
                "verdict": last[0].verdict,
                "at": _iso(last[0].created_at),
            }
            if last
            else None,
            "failures": [
                {
                    "run_pk": run.id,
                    "use_case": run.use_case,
                    "run_id": run.run_id,
                    "check": r.check,
                    "dataset": r.dataset or None,
                    "summary": mask_personal_values(r.summary),
                    "at": _iso(r.created_at),
                }
                for r, run in matched
                if r.verdict == "fail"
            ][-20:],
            "overrides": len(overrides),
        }
        if "approvals" in eng.sources:
            evidence["approvals"] = len(approvals)
        if "incidents" in eng.sources:
            relevant = [i for i in incidents if not eng.incident_types or i.breach_type in eng.incident_types]
            evidence["incidents"] = len(relevant)
            evidence["incidents_open"] = sum(1 for i in relevant if i.status != "resolved")
        if "audit" in eng.sources:
            evidence["audit_events"] = int(audit_count)
            if chain is not None:
                evidence["audit_chain_ok"] = chain.get("ok")
        if "model_cards" in eng.sources:
            evidence["model_versions"] = len(models)
            evidence["model_cards"] = sum(1 for m in models if m.card_path)
        evidence["status"] = _engagement_status(evidence, eng)
        engagements.append({**eng.to_json_dict(), "evidence": evidence})

    statuses = [e["evidence"]["status"] for e in engagements]
    return {
        "title": "Rapport de la charte IA — Métropole Aix-Marseille-Provence",
        "period": {"start": _iso(start), "end": _iso(end)},
        "generated_at": _iso(now or datetime.now(UTC)),
        "audit_chain": chain,
        "totals": {
            "engagements": len(engagements),
            "runs": len(runs_in_period),
            "results": len(results),
            "approvals": len(approvals),
            "overrides": sum(1 for a in approvals if a.decision in OVERRIDE_DECISIONS),
            "incidents": len(incidents),
            "by_status": {s: statuses.count(s) for s in ("respecté", "à surveiller", "manquement", "sans preuve")},
        },
        "engagements": engagements,
    }


def _engagement_status(evidence: dict[str, Any], eng: Engagement) -> str:
    """A reading aid for the committee; the counts are the evidence."""
    if evidence["fail"] or evidence.get("incidents_open") or evidence.get("audit_chain_ok") is False:
        return "manquement"
    if evidence["warn"] or evidence["overrides"]:
        return "à surveiller"
    if evidence["results"] or any(evidence.get(k) for k in ("approvals", "audit_events", "model_cards", "incidents")):
        return "respecté"
    return "sans preuve"


def verdict_rank(verdict: str | None) -> int:
    return _VERDICT_RANK.get(verdict or "", -1)
