"""What the governance view shows, computed from the ledger: overviews, run reports, incident
deadlines and the charter report for the Comité de la Gouvernance Numérique.

Kept apart from the Airflow plugin (which only renders) so that it is unit-testable and usable
from the CLI. It never imports airflow. Everything returned is JSON-safe and carries no raw
personal value: the ledger holds none, and :func:`mask_personal_values` masks anything that looks
like one before it is shown, as a second line of defence.

The read models live in sibling modules and are importable from here, as the view uses them:
:mod:`.engagements` (the charter's engagements), :mod:`.scrubbing`, :mod:`.ledger_rows` (rows as dicts),
:mod:`.evidence_sections` (the typed evidence a run report draws) and :mod:`.charter_report`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charter_guardrails.core.engagements import (
    ENGAGEMENTS_FILE,
    Engagement,
    load_engagements,
    principle_labels,
    principle_of,
)
from charter_guardrails.core.results import PRINCIPLES, Verdict, worst
from charter_guardrails.core.settings import get_settings
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
from charter_guardrails.reporting.charter_report import OVERRIDE_DECISIONS, charter_report, parse_period
from charter_guardrails.reporting.evidence_sections import (
    drift_features,
    energy,
    evidence_sections,
    fairness_table,
    group_shares,
)
from charter_guardrails.reporting.ledger_rows import (
    approval_dict,
    finding_dict,
    incident_dict,
    iso_utc,
    model_dict,
    result_dict,
    run_dict,
    time_left,
)
from charter_guardrails.reporting.scrubbing import mask_personal_values, mask_tree

__all__ = [
    "ENGAGEMENTS_FILE",
    "OVERRIDE_DECISIONS",
    "PENDING_DECISIONS",
    "Engagement",
    "approval_dict",
    "audit_events",
    "charter_report",
    "drift_features",
    "energy",
    "evidence_sections",
    "fairness_table",
    "find_check_run",
    "find_check_run_for",
    "finding_dict",
    "group_shares",
    "incident_dict",
    "latest_results",
    "load_engagements",
    "manifests_by_dataset",
    "mask_personal_values",
    "mask_tree",
    "model_dict",
    "parse_period",
    "pass_rates",
    "pending_approvals",
    "principle_labels",
    "principle_of",
    "recent_runs",
    "result_dict",
    "run_dict",
    "run_report",
    "time_left",
    "use_case_overview",
    "use_cases",
    "verdict_rank",
]

#: Run decisions that wait for a human (the gate's "needs approval").
PENDING_DECISIONS = frozenset({"needs_approval", "needs_override", "awaiting_approval", "pending_approval"})

_VERDICT_RANK = {"pass": 0, "warn": 1, "fail": 2}


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
                    "at": iso_utc(result.created_at),
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
        data["sections"] = evidence_sections(data["check"], data["evidence"], data["metrics"])
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
                "created_at": iso_utc(m.created_at),
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
                "verified_at": iso_utc(v.verified_at),
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
            "ts": iso_utc(e.ts),
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


def verdict_rank(verdict: str | None) -> int:
    return _VERDICT_RANK.get(verdict or "", -1)
