"""Findings against the policy: the ``personal_data`` check (Sûreté 1).

Per column, personal data is allowed only where the policy says so:

- a **declared** column may hold the entity types of its ``pii_allowed`` list;
- a column the policy does **not declare** may hold none (minimisation: it should not be there);
- a dataset declared ``personal_data: false`` may hold none anywhere. Finding some fails the
  check and raises a GDPR-compliance incident (Art. 33 fields filled from the policy).

Findings below the policy's ``min_score`` (look-alikes that fail a checksum, weak formats without
context) are reported as suspects and never fail the check.

The JSON and HTML reports are written under ``<reports_dir>/<use_case>/<run>/`` by
:mod:`.report_files` and linked from the result (``report_path``); ledger rows hold masked examples only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.privacy.report import ScanOptions, ScanReport
from charter_guardrails.checks.privacy.report_files import report_dir, write_reports
from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.messages import Message, Template, joined
from charter_guardrails.core.policy_models import DatasetRole
from charter_guardrails.core.results import CheckResult, Severity, Verdict, with_report_error

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.core.policy_models import Dataset
    from charter_guardrails.incidents.incident import IncidentDraft

CHECK = CheckName.PERSONAL_DATA
ENGAGEMENTS = CATALOGUE[CHECK].engagements

FORBIDDEN_COLUMN = Template("%(column)s (%(entities)s)")
PII_IN_NON_PERSONAL = Template("Personal data in a dataset declared non-personal: %(columns)s.")
PII_NOT_ALLOWED = Template("Personal data not allowed by the policy in %(count)s column(s): %(columns)s.")
PII_NOT_PSEUDONYMISED = Template("Allowed personal data is not pseudonymised before training in: %(columns)s.")
PII_ONLY_ALLOWED = Template(
    "Personal data only where the policy allows it (%(count)s column(s) with personal data, all declared). "
    "Mode %(mode)s, %(scanned)s of %(rows)s rows."
)
NO_PII = Template("No personal data found. Mode %(mode)s, %(scanned)s of %(rows)s rows.")
UNREADABLE = Template("The dataset could not be read (%(kind)s), so its personal data cannot be checked.")

#: Entity names a policy may use for the same thing (Presidio's generic names and ours).
_ALIASES = {
    "PHONE_NUMBER": {"FR_PHONE"},
    "FR_PHONE": {"PHONE_NUMBER"},
    "IBAN_CODE": {"FR_IBAN", "FR_RIB"},
    "FR_IBAN": {"IBAN_CODE"},
    "FR_RIB": {"IBAN_CODE", "FR_IBAN"},
    # Presidio's DATE_TIME (any date) covers the birth dates the scanner names DATE_OF_BIRTH
    "DATE_TIME": {"DATE_OF_BIRTH"},
    "ES_DNI": {"ES_NIF"},  # the DNI is the NIF of Spanish citizens (Presidio's name)
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


def _metrics(scan: ScanReport, columns: list[ColumnVerdict]) -> dict[str, float | int | None]:
    bad = [c for c in columns if not c.ok]
    return {
        "rows": scan.rows,
        "scanned_rows": scan.scanned_rows,
        "columns": len(scan.columns),
        "columns_with_pii": len([c for c in columns if c.found]),
        "forbidden_columns": len(bad),
        "forbidden_rows": max((c.forbidden_rows for c in bad), default=0),
        "seconds": round(scan.seconds, 3),
    }


def _evidence(scan: ScanReport, dataset: Dataset, columns: list[ColumnVerdict]) -> dict[str, Any]:
    return {
        "mode": scan.mode,
        "guarantee": scan.guarantee,
        "min_score": scan.min_score,
        "dataset_personal_data": dataset.personal_data,
        "columns": [c.to_json_dict() for c in columns],
        "declared_columns_absent": sorted({c.name for c in dataset.columns} - {c.name for c in scan.columns}),
    }


def _incident_draft(
    bad: list[ColumnVerdict],
    scan: ScanReport,
    policy: UseCasePolicy,
    dataset: Dataset,
    *,
    run_id: str | None,
    forbidden_rows: int,
) -> IncidentDraft:
    """The GDPR-compliance incident of personal data the policy does not allow (Art. 5(1)(c), minimisation).

    In a non-personal dataset above all, but also in a personal one: the DPO must know it was collected.
    """
    from charter_guardrails.incidents.incident import BreachType, IncidentDraft

    non_personal = not dataset.personal_data
    return IncidentDraft(
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
            else "Collecte de données personnelles non prévue par la politique d'usage : "
            "des colonnes contiennent des "
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
        approx_records=forbidden_rows * max(scan.rows // max(scan.scanned_rows, 1), 1),
    )


def _judgement(columns: list[ColumnVerdict], scan: ScanReport, dataset: Dataset) -> tuple[Verdict, Severity, Message]:
    """The verdict, its severity and its summary: fail on forbidden data, warn on clear-text training data."""
    bad = [c for c in columns if not c.ok]
    if bad:
        names = joined(FORBIDDEN_COLUMN(column=c.column, entities=joined(c.forbidden, "/")) for c in bad)
        if not dataset.personal_data:
            return Verdict.FAIL, Severity.CRITICAL, PII_IN_NON_PERSONAL(columns=names)
        return Verdict.FAIL, Severity.ERROR, PII_NOT_ALLOWED(count=len(bad), columns=names)
    if any(c.warning for c in columns):
        return Verdict.WARN, Severity.WARNING, PII_NOT_PSEUDONYMISED(columns=[c.column for c in columns if c.warning])
    with_pii = [c for c in columns if c.found]
    scanned = {"mode": scan.mode, "scanned": scan.scanned_rows, "rows": scan.rows}
    if with_pii:
        return Verdict.PASS, Severity.INFO, PII_ONLY_ALLOWED(count=len(with_pii), **scanned)
    return Verdict.PASS, Severity.INFO, NO_PII(**scanned)


def evaluate(
    scan: ScanReport, policy: UseCasePolicy, dataset: Dataset, *, run_id: str | None = None
) -> PersonalDataOutcome:
    """Build the ``personal_data`` CheckResult (and incident draft) from a scan."""
    columns = judge_columns(scan, dataset)
    bad = [c for c in columns if not c.ok]
    metrics = _metrics(scan, columns)
    verdict, severity, message = _judgement(columns, scan, dataset)
    incident = (
        _incident_draft(bad, scan, policy, dataset, run_id=run_id, forbidden_rows=int(metrics["forbidden_rows"] or 0))
        if bad
        else None
    )
    result = CheckResult(
        check=CHECK,
        verdict=verdict,
        severity=severity,
        engagements=list(ENGAGEMENTS),
        message=message,
        metrics=metrics,
        evidence=_evidence(scan, dataset, columns),
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
    parts: Sequence[Mapping[str, Any]] | None = None,
) -> PersonalDataOutcome:
    """The check: scan the dataset (a file as a stream, in bounded memory, partition by partition above
    ``privacy.partition_rows``) or ``frame``, judge it, write the reports. ``parts``: the scans of its partitions
    already done (:func:`.partitioned.scan_partition`, one mapped task each), merged instead of scanning.

    Unreadable data is a failing verdict, not an exception.
    """
    from charter_guardrails.checks.privacy.partitioned import merge, scan_delivery
    from charter_guardrails.core.errors import DatasetReadError

    dataset = policy.dataset(dataset_id)
    source = str(path.name if path else (dataset.path or dataset.table or dataset.id))
    options = options or ScanOptions.from_policy(policy.privacy, dataset, exhaustive=exhaustive)
    try:
        if parts is not None:
            scan = merge(parts, options, source=source)
        elif frame is not None:
            from charter_guardrails.checks.privacy.scanner import scan_frame  # Presidio and spaCy: only to scan here

            scan = scan_frame(frame, options, source=source)
        else:  # a file streams in bounded memory; an SQL table is scanned in its database
            scan = scan_delivery(dataset, path, options, source=source)
    except DatasetReadError as exc:
        result = CheckResult(
            check=CHECK,
            verdict=Verdict.FAIL,
            severity=Severity.ERROR,
            engagements=list(ENGAGEMENTS),
            message=UNREADABLE(kind=exc.kind),
            evidence={"read_error": exc.to_json_dict()},
            dataset=dataset.id,
        )
        guarantee = "not scanned: the dataset could not be read"
        scan = ScanReport(source, "exhaustive", 0, 0, policy.privacy.min_score, [], guarantee, 0.0)
        return PersonalDataOutcome(result=result, scan=scan, columns=[])
    outcome = evaluate(scan, policy, dataset, run_id=run_id)
    if reports:
        try:
            write_reports(outcome, use_case=policy.id, run_id=run_id or "adhoc")
        # A full or read-only reports folder must not lose the verdict: the caller records it, then fails.
        except OSError as exc:
            outcome.result = with_report_error(
                outcome.result, "personal-data scan report", report_dir(policy.id, run_id or "adhoc"), exc
            )
    return outcome


_FINDING_FIELDS = ("column", "entity_type", "count", "share", "mean_score", "max_score", "masked_examples", "allowed")


def record_findings(session: Session, result_row: Any, outcome: PersonalDataOutcome) -> int:
    """Insert the masked findings of a scan into ``pii_findings`` for a recorded result; return the row count."""
    from sqlalchemy import delete, select

    from charter_guardrails.ledger.audit_rows import run_changed
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
    # an audit event about the run, after the flush, in the same transaction: its digest covers these findings
    run_changed(session, result_row.check_run_id, action="findings.recorded", payload={"findings": len(rows)})
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
