"""Findings against the policy: the ``personal_data`` check (Sûreté 1, Proportionnalité 3).

Per column, personal data is allowed only where the policy says so:

- a **declared** column may hold the entity types of its ``pii_allowed`` list;
- a column the policy does **not declare** may hold none (minimisation: it should not be there);
- a dataset declared ``personal_data: false`` may hold none anywhere. Finding some fails the
  check and raises a GDPR-compliance incident (Art. 33 fields filled from the policy).

Findings below the policy's ``min_score`` (look-alikes that fail a checksum, weak formats without
context) are reported as suspects and never fail the check.

The JSON and HTML reports are written under ``<reports_dir>/<use_case>/<run>/`` and linked from
the result (``report_path``); ledger rows hold masked examples only.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.privacy.scanner import ScanOptions, ScanReport, scan_frame
from charter_guardrails.core.policy import DatasetRole
from charter_guardrails.core.results import CheckResult, Severity, Verdict, with_report_error
from charter_guardrails.core.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

    from charter_guardrails.core.policy import Dataset, UseCasePolicy
    from charter_guardrails.incidents.incident import IncidentDraft

CHECK = "personal_data"
ENGAGEMENTS = ["surete.1", "proportionnalite.3"]

#: Entity names a policy may use for the same thing (Presidio's generic names and ours).
_ALIASES = {
    "PHONE_NUMBER": {"FR_PHONE"},
    "FR_PHONE": {"PHONE_NUMBER"},
    "IBAN_CODE": {"FR_IBAN", "FR_RIB"},
    "FR_IBAN": {"IBAN_CODE"},
    "FR_RIB": {"IBAN_CODE", "FR_IBAN"},
}


def allowed_set(pii_allowed: list[str]) -> set[str]:
    out = set(pii_allowed)
    for name in pii_allowed:
        out |= _ALIASES.get(name, set())
    return out


@dataclass
class ColumnVerdict:
    column: str
    declared: bool
    allowed: list[str]
    found: list[str]
    forbidden: list[str]
    reason: str
    forbidden_rows: int = 0
    #: Allowed personal data that reaches training in clear (the column is not pseudonymised).
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return not self.forbidden

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "declared": self.declared,
            "allowed": self.allowed,
            "found": self.found,
            "forbidden": self.forbidden,
            "forbidden_rows": self.forbidden_rows,
            "ok": self.ok,
            "reason": self.reason,
            "warning": self.warning,
        }


@dataclass
class PersonalDataOutcome:
    """What the check produced: the result, the incident to raise (if any), and the scan behind them."""

    result: CheckResult
    scan: ScanReport
    columns: list[ColumnVerdict]
    incident: IncidentDraft | None = None
    reports: dict[str, str] = field(default_factory=dict)


def judge_columns(scan: ScanReport, dataset: Dataset) -> list[ColumnVerdict]:
    """Compare each scanned column's findings with the dataset's declaration."""
    declared = {c.name: c for c in dataset.columns}
    verdicts = []
    for column in scan.columns:
        found = sorted(column.entity_types())
        spec = declared.get(column.name)
        allowed = sorted(spec.pii_allowed) if spec else []
        if spec is None:
            forbidden = found
            reason = (
                ("column not declared in the policy holds personal data: " + ", ".join(found))
                if found
                else "not declared; no personal data found"
            )
        elif not dataset.personal_data:
            forbidden = found
            reason = (
                ("dataset declared non-personal, but the column holds " + ", ".join(found))
                if found
                else "no personal data found"
            )
        else:
            ok = allowed_set(spec.pii_allowed)
            forbidden = [e for e in found if e not in ok]
            if forbidden:
                reason = "not allowed by pii_allowed: " + ", ".join(forbidden)
            elif found:
                reason = (
                    "allowed: " + ", ".join(found) + (" (pseudonymised before training)" if spec.pseudonymise else "")
                )
            else:
                reason = "no personal data found"
        rows = max((f.count for f in column.findings if f.entity_type in forbidden), default=0)
        warning = None
        if (
            spec is not None
            and found
            and not forbidden
            and not spec.pseudonymise
            and dataset.role is DatasetRole.TRAINING
        ):
            warning = "allowed personal data reaches training in clear: declare pseudonymise: true"
        verdicts.append(ColumnVerdict(column.name, spec is not None, allowed, found, forbidden, reason, rows, warning))
    return verdicts


def evaluate(
    scan: ScanReport, policy: UseCasePolicy, dataset: Dataset, *, run_id: str | None = None
) -> PersonalDataOutcome:
    """Build the ``personal_data`` CheckResult (and incident draft) from a scan."""
    from charter_guardrails.incidents.incident import BreachType, IncidentDraft

    columns = judge_columns(scan, dataset)
    bad = [c for c in columns if not c.ok]
    with_pii = [c for c in columns if c.found]
    missing = sorted({c.name for c in dataset.columns} - {c.name for c in scan.columns})
    metrics: dict[str, float | int | None] = {
        "rows": scan.rows,
        "scanned_rows": scan.scanned_rows,
        "columns": len(scan.columns),
        "columns_with_pii": len(with_pii),
        "forbidden_columns": len(bad),
        "forbidden_rows": max((c.forbidden_rows for c in bad), default=0),
        "seconds": round(scan.seconds, 3),
    }
    evidence: dict[str, Any] = {
        "mode": scan.mode,
        "guarantee": scan.guarantee,
        "min_score": scan.min_score,
        "dataset_personal_data": dataset.personal_data,
        "columns": [c.to_json_dict() for c in columns],
        "declared_columns_absent": missing,
    }
    incident = None
    if bad:
        names = ", ".join(f"{c.column} ({'/'.join(c.forbidden)})" for c in bad)
        non_personal = not dataset.personal_data
        if non_personal:
            summary = f"Personal data in a dataset declared non-personal: {names}."
            severity = Severity.CRITICAL
        else:
            summary = f"Personal data not allowed by the policy in {len(bad)} column(s): {names}."
            severity = Severity.ERROR
        # Personal data the purpose does not need is a GDPR compliance failure (Art. 5(1)(c)), in a
        # non-personal dataset above all, but also in a personal one: the DPO must know it was collected.
        incident = IncidentDraft(
            breach_type=BreachType.GDPR_COMPLIANCE,
            severity="high" if non_personal else "medium",
            dataset=dataset.id,
            run_id=run_id,
            title=(
                f"Données personnelles non autorisées dans {policy.id}/{dataset.id}"
                if non_personal
                else f"Données personnelles hors déclaration dans {policy.id}/{dataset.id}"
            ),
            nature=(
                "Collecte de données personnelles non prévue par la finalité : le jeu de données est déclaré sans "
                "données personnelles, mais le scan en a trouvé (RGPD art. 5(1)(c), minimisation)."
                if non_personal
                else "Collecte de données personnelles non prévue par la politique d'usage : des colonnes contiennent des "
                "données personnelles non déclarées ou non autorisées (RGPD art. 5(1)(c), minimisation)."
            ),
            facts={
                "columns": [c.to_json_dict() for c in bad],
                "scan_mode": scan.mode,
                "rows": scan.rows,
                "scanned_rows": scan.scanned_rows,
            },
            likely_consequences=(
                "Des données de contact ou d'identification de personnes pourraient être utilisées pour "
                "entraîner un modèle sans base légale ni information des personnes."
                if non_personal
                else "Des données personnelles non nécessaires à la finalité pourraient être conservées ou "
                "utilisées pour l'entraînement."
            ),
            measures_taken=[
                "entraînement bloqué par le garde-fou personal_data",
                "rapport de scan masqué conservé",
                "alerte envoyée au RSSI et au DPO",
            ],
            approx_records=int(metrics["forbidden_rows"] or 0) * max(scan.rows // max(scan.scanned_rows, 1), 1),
        )
        verdict = Verdict.FAIL
    elif any(c.warning for c in columns):
        verdict, severity = Verdict.WARN, Severity.WARNING
        names = ", ".join(c.column for c in columns if c.warning)
        summary = f"Allowed personal data is not pseudonymised before training in: {names}."
    else:
        verdict, severity = Verdict.PASS, Severity.INFO
        summary = (
            f"Personal data only where the policy allows it ({len(with_pii)} column(s) with personal data, all declared)."
            if with_pii
            else "No personal data found."
        )
        summary += f" Mode {scan.mode}, {scan.scanned_rows} of {scan.rows} rows."
    result = CheckResult(
        check=CHECK,
        verdict=verdict,
        severity=severity,
        engagements=list(ENGAGEMENTS),
        summary=summary,
        metrics=metrics,
        evidence=evidence,
        dataset=dataset.id,
    )
    return PersonalDataOutcome(result=result, scan=scan, columns=columns, incident=incident)


def check_personal_data(
    policy: UseCasePolicy,
    dataset_id: str,
    frame: pd.DataFrame | None = None,
    *,
    path: Path | None = None,
    exhaustive: bool | None = None,
    run_id: str | None = None,
    reports: bool = True,
    options: ScanOptions | None = None,
) -> PersonalDataOutcome:
    """The check: read the dataset (or use ``frame``), scan it, judge it, write the reports.

    Unreadable data is a failing verdict, not an exception.
    """
    from charter_guardrails.readers.files import DatasetReadError, read_dataset

    dataset = policy.dataset(dataset_id)
    source = path.name if path else (dataset.path or dataset.table or dataset.id)
    if frame is None:
        try:
            frame = read_dataset(dataset, path)
        except DatasetReadError as exc:
            scan = ScanReport(
                source=str(source),
                mode="exhaustive",
                rows=0,
                scanned_rows=0,
                min_score=policy.privacy.min_score,
                columns=[],
                guarantee="not scanned: the dataset could not be read",
                seconds=0.0,
            )
            result = CheckResult(
                check=CHECK,
                verdict=Verdict.FAIL,
                severity=Severity.ERROR,
                engagements=list(ENGAGEMENTS),
                summary=f"The dataset could not be read ({exc.kind}), so its personal data cannot be checked.",
                evidence={"read_error": exc.to_json_dict()},
                dataset=dataset.id,
            )
            return PersonalDataOutcome(result=result, scan=scan, columns=[])
    options = options or ScanOptions.from_policy(policy.privacy, dataset, exhaustive=exhaustive)
    scan = scan_frame(frame, options, source=str(source))
    outcome = evaluate(scan, policy, dataset, run_id=run_id)
    if reports:
        try:
            write_reports(outcome, use_case=policy.id, run_id=run_id or "adhoc")
        except (
            OSError
        ) as exc:  # a full or read-only reports folder must not lose the verdict: the caller records it, then fails
            outcome.result = with_report_error(
                outcome.result, "personal-data scan report", report_dir(policy.id, run_id or "adhoc"), exc
            )
    return outcome


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", part)[:120] or "_"


def report_dir(use_case: str, run_id: str) -> Path:
    return get_settings().reports_dir / _safe(use_case) / _safe(run_id)


def write_reports(
    outcome: PersonalDataOutcome, *, use_case: str, run_id: str, name: str | None = None
) -> dict[str, str]:
    """Write ``personal_data__<dataset>.json`` and ``.html``; link them from the result."""
    folder = report_dir(use_case, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"personal_data__{_safe(name or outcome.result.dataset or outcome.scan.source)}"
    json_path, html_path = folder / f"{stem}.json", folder / f"{stem}.html"
    document = {
        "generated_at": datetime.now(UTC).isoformat(),
        "use_case": use_case,
        "run_id": run_id,
        "result": outcome.result.to_json_dict(),
        "scan": outcome.scan.to_json_dict(),
        "columns": [c.to_json_dict() for c in outcome.columns],
    }
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    html_path.write_text(render_html(outcome, use_case=use_case, run_id=run_id), encoding="utf-8")
    outcome.reports = {"json": str(json_path), "html": str(html_path)}
    outcome.result = outcome.result.model_copy(
        update={
            "report_path": str(html_path),
            "evidence": {**outcome.result.evidence, "reports": dict(outcome.reports)},
        }
    )
    return outcome.reports


def render_html(outcome: PersonalDataOutcome, *, use_case: str, run_id: str) -> str:
    """A self-contained report (no script, no external asset), masked values only."""
    e = html.escape
    result, scan = outcome.result, outcome.scan
    verdicts = {c.column: c for c in outcome.columns}
    rows = []
    for column in scan.columns:
        v = verdicts.get(column.name)
        status = "—" if v is None else ("OK" if v.ok else "INTERDIT")
        findings = (
            "<br>".join(
                f"<b>{e(f.entity_type)}</b> {f.count} lignes ({f.share:.2%}), score moyen {f.mean_score:.2f}, max {f.max_score:.2f}"
                f" — ex. {e(', '.join(f.masked_examples))}"
                for f in column.findings
            )
            or "aucune"
        )
        suspects = "<br>".join(f"{e(f.entity_type)} {f.count} (score {f.max_score:.2f})" for f in column.suspects) or ""
        rows.append(
            f"<tr class='{'bad' if v and not v.ok else ''}'><td>{e(column.name)}</td><td>{e(column.kind)}</td>"
            f"<td>{column.non_null}/{column.rows}</td><td>{column.distinct}</td><td>{findings}</td><td>{suspects}</td>"
            f"<td>{e(status)}</td><td>{e(v.reason if v else '')}{e(' — ' + v.warning) if v and v.warning else ''}</td></tr>"
        )
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Données personnelles — {e(use_case)} / {e(result.dataset or "")}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;
vertical-align:top}}tr.bad{{background:#fde2e2}}.fail{{color:#b00020}}.pass{{color:#006400}}</style></head><body>
<h1>Contrôle des données personnelles</h1>
<p>Cas d'usage <b>{e(use_case)}</b>, jeu de données <b>{e(result.dataset or scan.source)}</b>, exécution <code>{e(run_id)}</code>.</p>
<p class="{e(result.verdict.value)}">Verdict : <b>{e(result.verdict.value.upper())}</b> — {e(result.summary)}</p>
<p>Engagements de la charte : {e(", ".join(result.engagements))}. Mode : {e(scan.mode)}. {e(scan.guarantee)}.</p>
<p>{scan.scanned_rows} lignes analysées sur {scan.rows}; seuil de score {scan.min_score}. Les exemples sont masqués.</p>
<table><tr><th>colonne</th><th>type</th><th>non vides</th><th>valeurs distinctes</th><th>entités trouvées</th>
<th>suspects (sous le seuil)</th><th>statut</th><th>raison</th></tr>
{"".join(rows)}
</table></body></html>
"""


_FINDING_FIELDS = ("column", "entity_type", "count", "share", "mean_score", "max_score", "masked_examples", "allowed")


def record_findings(session: Session, result_row: Any, outcome: PersonalDataOutcome) -> int:
    """Insert the masked findings of a scan into ``pii_findings`` for a recorded result; return the row count."""
    from sqlalchemy import delete, select

    from charter_guardrails.ledger.models import PiiFinding

    verdicts = {c.column: c for c in outcome.columns}
    rows = [
        {
            "column": column.name[:256],
            "entity_type": finding.entity_type,
            "count": finding.count,
            "share": finding.share,
            "mean_score": finding.mean_score,
            "max_score": finding.max_score,
            "masked_examples": list(finding.masked_examples),
            "allowed": bool((verdict := verdicts.get(column.name)) and finding.entity_type not in verdict.forbidden),
        }
        for column in outcome.scan.columns
        for finding in column.findings
    ]
    stored = session.scalars(
        select(PiiFinding).where(PiiFinding.check_result_id == result_row.id).order_by(PiiFinding.id)
    ).all()
    if [{key: getattr(f, key) for key in _FINDING_FIELDS} for f in stored] == rows:
        return len(rows)  # a retried scan found the same: its findings stay as they were
    session.execute(
        delete(PiiFinding).where(PiiFinding.check_result_id == result_row.id)
    )  # a re-run replaces its findings
    for values in rows:
        session.add(PiiFinding(check_result_id=result_row.id, **values))
    session.flush()
    return len(rows)


def persist_outcome(
    outcome: PersonalDataOutcome, policy: UseCasePolicy, *, dag_id: str, run_id: str, url: str | None = None
) -> tuple[int | None, int]:
    """Record the result, its findings and its incident in one ledger transaction; return (incident id, findings)."""
    from charter_guardrails.incidents.incident import raise_incident
    from charter_guardrails.ledger.store import get_or_create_check_run, ledger_session, record_check_result

    with ledger_session(url) as session:
        run = get_or_create_check_run(session, use_case=policy.id, dag_id=dag_id, run_id=run_id)
        row = record_check_result(session, run, outcome.result)
        findings = record_findings(session, row, outcome)
        incident_id = None
        if outcome.incident is not None:
            incident, _ = raise_incident(session, policy, outcome.incident)
            incident_id = incident.id
    return incident_id, findings
