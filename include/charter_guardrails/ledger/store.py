"""Writing to and reading from the ledger. Every write is idempotent on stable identifiers
(use case, dataset, Airflow run id), so a retried or cleared task leaves the ledger as it was.

Paths are stored relative to their folder (:mod:`charter_guardrails.core.stored_paths`): a result's report
and a run's reports relative to ``CHARTER_REPORTS_DIR``, a dataset's location relative to ``CHARTER_DATA_DIR``,
so that a state restored elsewhere keeps its links.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from charter_guardrails.core.catalogue import CheckName
from charter_guardrails.core.messages import Message
from charter_guardrails.core.results import CheckResult, Verdict
from charter_guardrails.core.settings import get_settings
from charter_guardrails.core.stored_paths import to_stored
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.db import session_factory
from charter_guardrails.ledger.models import Base, CheckResultRecord, CheckRun, DatasetRecord

SYSTEM_ACTOR = "charter-guardrails"

_Row = TypeVar("_Row", bound=Base)


@contextmanager
def ledger_session(url: str | None = None) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error."""
    factory = session_factory(url)
    with factory() as session, session.begin():
        yield session


def get_or_create(
    session: Session, model: type[_Row], defaults: dict[str, Any] | None = None, **keys: Any
) -> tuple[_Row, bool]:
    """Fetch a row by its unique keys or insert it; safe against a concurrent insert of the same keys."""
    row = session.scalars(select(model).filter_by(**keys)).first()
    if row is not None:
        return row, False
    try:
        with session.begin_nested():
            row = model(**keys, **(defaults or {}))
            session.add(row)
    except IntegrityError:
        row = session.scalars(select(model).filter_by(**keys)).one()
        return row, False
    return row, True


def ensure_dataset(
    session: Session, *, use_case: str, name: str, format: str, location: str, personal_data: bool
) -> DatasetRecord:
    row, _ = get_or_create(
        session,
        DatasetRecord,
        use_case=use_case,
        name=name,
        defaults={
            "format": format,
            "location": to_stored(location, get_settings().data_dir) or location,
            "personal_data": personal_data,
        },
    )
    return row


def get_or_create_check_run(
    session: Session, *, use_case: str, dag_id: str, run_id: str, actor: str = SYSTEM_ACTOR
) -> CheckRun:
    """The run of (use case, DAG, run id); a new run is recorded in the audit chain (``run.started``)."""
    row, created = get_or_create(session, CheckRun, use_case=use_case, dag_id=dag_id, run_id=run_id)
    if created:
        append_event(
            session,
            actor=actor,
            action="run.started",
            subject=row,
            use_case=use_case,
            run_id=run_id,
            payload={"dag_id": dag_id},
        )
    return row


def record_check_result(
    session: Session, run: CheckRun, result: CheckResult, *, actor: str = SYSTEM_ACTOR
) -> CheckResultRecord:
    """Insert or replace the result of ``result.check`` on ``result.dataset`` for this run.

    Its event is about the run: it carries the digest of the run with all its results and findings."""
    values = {
        "verdict": result.verdict.value,
        "severity": result.severity.value,
        "engagements": list(result.engagements),
        "summary": result.summary,
        "message_id": result.message_id,
        "message_params": result.message_params if result.message else None,
        "metrics": dict(result.metrics),
        "evidence": result.to_json_dict()["evidence"],
        "report_path": to_stored(result.report_path, get_settings().reports_dir),
    }
    row, created = get_or_create(
        session,
        CheckResultRecord,
        check_run_id=run.id,
        check=result.check,
        dataset=result.dataset or "",
        defaults=values,
    )
    if not created and _same_verdict(row, values):
        return row  # a retried task reached the same verdict: the ledger stays as it was, first measurements kept
    if not created:
        for key, value in values.items():
            setattr(row, key, value)
        row.created_at = datetime.now(UTC)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="check.recorded",
        subject=run,
        use_case=run.use_case,
        run_id=run.run_id,
        payload={
            "check": result.check,
            "dataset": result.dataset,
            "verdict": result.verdict.value,
            "summary": result.summary,
        },
    )
    return row


#: Metrics that measure the attempt, not the data: a retry that differs only there is the same verdict.
ATTEMPT_METRICS = frozenset({"seconds"})


def _same_verdict(row: CheckResultRecord, values: dict[str, Any]) -> bool:
    """The stored result says what ``values`` says: verdict, severity, engagements, summary, report and data metrics.

    The evidence is not compared: it also carries when the check ran (``as_of``, the reference's
    ``created_at``), and the audit event of a result covers its verdict and summary.
    """

    def data_metrics(metrics: dict[str, Any] | None) -> dict[str, Any]:
        return {k: v for k, v in (metrics or {}).items() if k not in ATTEMPT_METRICS}

    return (
        row.verdict,
        row.severity,
        list(row.engagements or []),
        row.summary,
        row.report_path,
        data_metrics(row.metrics),
    ) == (
        values["verdict"],
        values["severity"],
        values["engagements"],
        values["summary"],
        values["report_path"],
        data_metrics(values["metrics"]),
    )


def finish_check_run(
    session: Session,
    run: CheckRun,
    *,
    decision: str,
    blocked_by: list[str] | None = None,
    reports: dict[str, Any] | None = None,
    actor: str = SYSTEM_ACTOR,
) -> CheckRun:
    """Record the run's decision (and its report files, paths inside the reports folder stored relative to it)."""
    reports = _stored_reports(reports)
    if (
        run.finished_at is not None
        and run.decision == decision
        and list(run.blocked_by or []) == list(blocked_by or [])
        and {**(run.reports or {}), **(reports or {})} == (run.reports or {})
    ):
        return run  # a retried task decides the run the same way: nothing to record again
    run.decision = decision
    run.blocked_by = list(blocked_by or [])
    if reports:
        run.reports = {**(run.reports or {}), **reports}
    run.finished_at = datetime.now(UTC)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="run.decided",
        subject=run,
        use_case=run.use_case,
        run_id=run.run_id,
        payload={"dag_id": run.dag_id, "decision": decision, "blocked_by": run.blocked_by},
    )
    return run


def _stored_reports(reports: dict[str, Any] | None) -> dict[str, Any] | None:
    """A run's report files as stored: a path string inside the reports folder relative to it, anything else as is."""
    if not reports:
        return reports
    root = get_settings().reports_dir
    return {
        name: to_stored(value, root) if isinstance(value, str) and value else value for name, value in reports.items()
    }


def decide_from_results(session: Session, run: CheckRun, *, actor: str = SYSTEM_ACTOR) -> CheckRun:
    """Close a run that no gate decides (a command-line check) with what its results say.

    ``blocked`` by the checks that failed, else ``passed``; a later command on the same run decides it again
    over all its results, so the overview never shows it as still running.
    """
    rows = session.scalars(select(CheckResultRecord).where(CheckResultRecord.check_run_id == run.id)).all()
    failed = sorted({r.check for r in rows if r.verdict == Verdict.FAIL.value})
    return finish_check_run(session, run, decision="blocked" if failed else "passed", blocked_by=failed, actor=actor)


def results_for_run(session: Session, run: CheckRun) -> list[CheckResult]:
    """The run's results, read back through :class:`CheckResult`: a row whose check is not in the catalogue,
    or whose evidence does not fit its check's model, raises (the gate then fails closed), and so do rows that
    differ from the audit chain's record of the run (:func:`.audit_rows.check_run_rows`)."""
    from charter_guardrails.ledger.audit_rows import check_run_rows

    session.flush()
    check_run_rows(session, run.id, run.run_id)
    rows = session.scalars(
        select(CheckResultRecord).where(CheckResultRecord.check_run_id == run.id).order_by(CheckResultRecord.id)
    )
    return [
        CheckResult(
            check=CheckName(r.check),
            verdict=r.verdict,
            severity=r.severity,
            engagements=r.engagements,
            summary=r.summary,
            message=Message(msgid=r.message_id, params=r.message_params or {}) if r.message_id else None,
            metrics=r.metrics,
            evidence=r.evidence,
            dataset=r.dataset or None,
            report_path=r.report_path,
        )
        for r in rows
    ]
