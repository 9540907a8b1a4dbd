"""What decisions rest on, in the audit chain: check runs with their results and PII findings, and the alert outbox.

A check run's audited digest (``payload.row_digest`` of its events, subject ``check_runs#<id>``) is the hash of
the run's rows in canonical form: the run row's digest, then for each of its results in id order the result's
row digest followed by the row digests of its PII findings in id order. Every write that changes one of them
appends an event about the run (``check.recorded``, ``findings.recorded``, ``run.decided``), so a verdict
flipped, a summary changed, a finding edited, deleted or inserted behind the ledger's back no longer matches
the run's last event. The event also records the run row's own digest and the counts of results and findings,
so that the verification says which part changed.

The verification (:func:`verify_runs`) streams the three tables ordered by run id and merges them, one run in
memory at a time; a result or finding whose run does not exist is reported on its own.

The alert outbox is audited row by row (``alert_outbox#<id>``): its insert and each change of its status
(pending, delivered, dead, superseded) append an event (:func:`outbox_event`); the delivery bookkeeping that a
retry changes is left out of its digest (``AlertOutbox.__digest_excluded__``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, closing
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from charter_guardrails.ledger.audit import ChainReport, Problem, append_event, mapping_digest
from charter_guardrails.ledger.models import AlertOutbox, AuditEvent, CheckResultRecord, CheckRun, PiiFinding

#: Tables audited since ledgers already held rows of them: ``charter audit seal`` records those rows once.
SEALABLE = ("check_runs", "alert_outbox")
SEAL_HINT = (
    "inserted outside the ledger, or written before this table was audited: on a ledger upgraded from an "
    "earlier version, check the rows and run `charter audit seal` once"
)
BATCH_ROWS = 2000

_RUNS = CheckRun.__table__
_RESULTS = CheckResultRecord.__table__
_FINDINGS = PiiFinding.__table__
_EVENTS = AuditEvent.__table__
_SUBJECT_EVENTS = _EVENTS.alias("run_subject_events")


class RunDigest:
    """The composite digest of one run, built incrementally: its row, then each result and its findings."""

    def __init__(self, run_row: Mapping[Any, Any]) -> None:
        self.run_digest = mapping_digest(CheckRun, run_row)
        self.results = self.findings = 0
        self._hash = hashlib.sha256(b"charter-check-run:v1\n")
        self._hash.update(f"check_runs:{self.run_digest}\n".encode("ascii"))

    def add_result(self, row: Mapping[Any, Any]) -> None:
        self.results += 1
        self._hash.update(f"check_results:{mapping_digest(CheckResultRecord, row)}\n".encode("ascii"))

    def add_finding(self, row: Mapping[Any, Any]) -> None:
        self.findings += 1
        self._hash.update(f"pii_findings:{mapping_digest(PiiFinding, row)}\n".encode("ascii"))

    def state(self) -> dict[str, Any]:
        """What an event about the run records: the composite digest, the run row's, the counts."""
        return {
            "row_digest": self._hash.hexdigest(),
            "run_digest": self.run_digest,
            "rows": {"check_results": self.results, "pii_findings": self.findings},
        }


def run_state(session: Session, run_id: int) -> dict[str, Any]:
    """:meth:`RunDigest.state` of run ``run_id`` as the database holds it now (the caller flushed)."""
    run = session.execute(select(*_RUNS.c).where(_RUNS.c.id == run_id)).one()
    digest = RunDigest(run._mapping)
    results = session.execute(select(*_RESULTS.c).where(_RESULTS.c.check_run_id == run_id).order_by(_RESULTS.c.id))
    findings = _findings_query().where(_RESULTS.c.check_run_id == run_id)
    by_result: dict[int, list[Mapping[Any, Any]]] = {}
    for finding in session.execute(findings):
        by_result.setdefault(int(finding._mapping[_FINDINGS.c.check_result_id]), []).append(finding._mapping)
    for result in results:
        digest.add_result(result._mapping)
        for finding_row in by_result.get(int(result._mapping[_RESULTS.c.id]), []):
            digest.add_finding(finding_row)
    return digest.state()


def check_run_rows(session: Session, run_pk: int, run_name: str) -> None:
    """Raise :class:`~charter_guardrails.core.errors.LedgerTampered` unless run ``run_pk``'s rows (the run, its
    results and findings) are as its last audit event recorded them.

    The gate, the batch routing and publish decide on those rows: a verdict flipped in the database would
    otherwise be decided on, and the decision's own event would then record the flipped state as audited.
    """
    from charter_guardrails.core.errors import LedgerTampered

    last = session.execute(
        select(_EVENTS.c.seq, _EVENTS.c.payload)
        .where(_EVENTS.c.subject_type == "check_runs", _EVENTS.c.subject_id == str(run_pk))
        .order_by(_EVENTS.c.seq.desc())
        .limit(1)
    ).first()
    recorded = last.payload.get("row_digest") if last is not None and isinstance(last.payload, dict) else None
    if recorded is None or recorded != run_state(session, run_pk)["row_digest"]:
        where = (
            f"its last audit event ({last.seq})" if last is not None else "the audit chain, which does not record it"
        )
        raise LedgerTampered(
            f"run {run_name}: its results and personal-data findings differ from {where}: they were edited, "
            "inserted or deleted outside the ledger, so no decision is taken on them. Run `charter audit verify "
            "--full` to see which rows, restore the ledger from its backup, then run the DAG again"
        )


def _findings_query() -> Any:
    return (
        select(*_FINDINGS.c, _RESULTS.c.check_run_id.label("_run_id"))
        .join_from(_FINDINGS, _RESULTS, _FINDINGS.c.check_result_id == _RESULTS.c.id)
        .order_by(_RESULTS.c.check_run_id, _FINDINGS.c.check_result_id, _FINDINGS.c.id)
    )


def run_changed(
    session: Session, run_id: int, *, action: str, payload: dict[str, Any], actor: str = "charter-guardrails"
) -> AuditEvent:
    """Append the event of a change to run ``run_id``'s rows (its findings, say), written and flushed by the caller."""
    run = session.get(CheckRun, run_id)
    if run is None:
        raise LookupError(f"check run {run_id} does not exist: record the run before its rows")
    return append_event(
        session, actor=actor, action=action, subject=run, use_case=run.use_case, run_id=run.run_id, payload=payload
    )


def outbox_event(
    session: Session, row: AlertOutbox, *, actor: str, action: str, payload: dict[str, Any] | None = None
) -> AuditEvent:
    """Append the event of an outbox row's insert (``alert.queued``) or change of status, the row as its subject."""
    body = row.payload if isinstance(row.payload, dict) else {}
    # Alert payloads carry the use case and run at the top; SIEM events under their ECS labels.
    use_case = body.get("use_case") or body.get("labels.use_case")
    run_id = body.get("run_id") or body.get("labels.run_id")
    return append_event(
        session,
        actor=actor,
        action=action,
        subject=row,
        use_case=str(use_case) if use_case else None,
        run_id=str(run_id) if run_id else None,
        payload={
            "incident_id": row.incident_id,
            "channel": row.channel,
            "idempotency_key": row.idempotency_key,
            "status": row.status,
            **(payload or {}),
        },
    )


class _Peek:
    """An iterator of rows that shows its next one."""

    def __init__(self, rows: Iterator[Any]) -> None:
        self._rows = rows
        self.next: Any = next(rows, None)

    def pop(self) -> Any:
        row, self.next = self.next, next(self._rows, None)
        return row


def _runs_query() -> Any:
    """Every run with its last event, by one index lookup per run (``ix_audit_events_subject``)."""
    last_seq = (
        select(func.max(_SUBJECT_EVENTS.c.seq))
        .where(_SUBJECT_EVENTS.c.subject_type == "check_runs", _SUBJECT_EVENTS.c.subject_id == cast(_RUNS.c.id, String))
        .scalar_subquery()
    )
    return (
        select(*_RUNS.c, _EVENTS.c.seq.label("_audit_seq"), _EVENTS.c.payload.label("_audit_payload"))
        .select_from(_RUNS.outerjoin(_EVENTS, _EVENTS.c.seq == last_seq))
        .order_by(_RUNS.c.id)
    )


def verify_runs(session: Session, report: ChainReport, since_seq: int = 0) -> None:
    """Every run, its results and their findings against the run's last event; rows whose run does not exist.

    Streamed: the three tables are read ordered by run id and merged, one run's digest in memory at a time.
    ``since_seq`` (an incremental verification): only the runs with an event after it, in groups of
    :data:`BATCH_ROWS` ids. These tables grow with the chain, and an edit of an older run's rows appends no
    event: the full verification (``charter audit verify --full``, the integrity monitor's daily run) reads
    every row.
    """
    if not since_seq:
        _merge(session, report, None)
        _orphan_findings_without_result(session, report)
        return
    touched = select(_EVENTS.c.subject_id).where(_EVENTS.c.seq > since_seq, _EVENTS.c.subject_type == "check_runs")
    ids = sorted({int(i) for i in session.scalars(touched.distinct()) if i and str(i).isdigit()})
    for start in range(0, len(ids), BATCH_ROWS):
        _merge(session, report, ids[start : start + BATCH_ROWS])


def _merge(session: Session, report: ChainReport, run_ids: list[int] | None) -> None:
    """:func:`verify_runs` over every run (``run_ids`` None) or over these runs only."""
    options = {"yield_per": BATCH_ROWS}
    runs_query = _runs_query()
    results_query = select(*_RESULTS.c).order_by(_RESULTS.c.check_run_id, _RESULTS.c.id)
    findings_query = _findings_query()
    if run_ids is not None:
        runs_query = runs_query.where(_RUNS.c.id.in_(run_ids))
        results_query = results_query.where(_RESULTS.c.check_run_id.in_(run_ids))
        findings_query = findings_query.where(_RESULTS.c.check_run_id.in_(run_ids))
    with ExitStack() as stack:
        runs = stack.enter_context(closing(session.execute(runs_query, execution_options=options)))
        results = _Peek(iter(stack.enter_context(closing(session.execute(results_query, execution_options=options)))))
        findings = _Peek(iter(stack.enter_context(closing(session.execute(findings_query, execution_options=options)))))
        for run in runs:
            run_id = int(run._mapping[_RUNS.c.id])
            _orphans_before(report, results, findings, run_id)
            digest = RunDigest(run._mapping)
            while results.next is not None and int(results.next._mapping[_RESULTS.c.check_run_id]) == run_id:
                result = results.pop()._mapping
                result_id = int(result[_RESULTS.c.id])
                digest.add_result(result)
                while findings.next is not None and _finding_key(findings.next) <= (run_id, result_id):
                    finding = findings.pop()
                    if _finding_key(finding) == (run_id, result_id):
                        digest.add_finding(finding._mapping)
                    else:
                        _orphan_finding(report, finding)
            _compare(report, run._mapping, digest)
        _orphans_before(report, results, findings, None)


def _finding_key(row: Any) -> tuple[int, int]:
    return int(row._mapping["_run_id"]), int(row._mapping[_FINDINGS.c.check_result_id])


def _orphans_before(report: ChainReport, results: _Peek, findings: _Peek, run_id: int | None) -> None:
    """Results and findings of runs before ``run_id`` (every one left when None): their run does not exist."""
    while results.next is not None and (run_id is None or int(results.next._mapping[_RESULTS.c.check_run_id]) < run_id):
        row = results.pop()._mapping
        report.add(
            Problem(
                None,
                f"result row of run id {row[_RESULTS.c.check_run_id]}, which does not exist "
                "(inserted outside the ledger, or its run deleted)",
                f"check_results#{row[_RESULTS.c.id]}",
            )
        )
    while findings.next is not None and (run_id is None or _finding_key(findings.next)[0] < run_id):
        _orphan_finding(report, findings.pop())


def _orphan_finding(report: ChainReport, row: Any) -> None:
    report.add(
        Problem(
            None,
            f"PII finding row of run id {row._mapping['_run_id']}, which does not exist "
            "(inserted outside the ledger, or its run deleted)",
            f"pii_findings#{row._mapping[_FINDINGS.c.id]}",
        )
    )


def _orphan_findings_without_result(session: Session, report: ChainReport) -> None:
    stmt = (
        select(_FINDINGS.c.id, _FINDINGS.c.check_result_id)
        .where(_FINDINGS.c.check_result_id.not_in(select(_RESULTS.c.id)))
        .order_by(_FINDINGS.c.id)
    )
    with closing(session.execute(stmt, execution_options={"yield_per": BATCH_ROWS})) as rows:
        for row in rows:
            report.add(
                Problem(
                    None,
                    f"PII finding row of result id {row.check_result_id}, which does not exist "
                    "(inserted outside the ledger, or its result deleted)",
                    f"pii_findings#{row.id}",
                )
            )


def _compare(report: ChainReport, run: Mapping[Any, Any], digest: RunDigest) -> None:
    subject, name = f"check_runs#{run[_RUNS.c.id]}", f"run {run[_RUNS.c.run_id]}"
    if run["_audit_seq"] is None:
        report.add(Problem(None, f"{name}: row is not recorded in the audit chain ({SEAL_HINT})", subject))
        return
    payload = run["_audit_payload"] if isinstance(run["_audit_payload"], dict) else {}
    state = digest.state()
    if payload.get("row_digest") == state["row_digest"]:
        return
    recorded_rows = payload.get("rows") if isinstance(payload.get("rows"), dict) else {}
    parts = []
    if payload.get("run_digest") not in (None, state["run_digest"]):
        parts.append("the run row differs from its last audited state (its decision, say)")
    if recorded_rows and recorded_rows != state["rows"]:
        parts.append(
            f"its results and PII findings differ from their last audited state ({recorded_rows.get('check_results')} "
            f"result(s) and {recorded_rows.get('pii_findings')} finding(s) recorded, {digest.results} and "
            f"{digest.findings} now: rows deleted or inserted)"
        )
    elif not parts or payload.get("run_digest") is None:
        parts.append("a result or PII finding of the run differs from its last audited state (a verdict, say)")
    detail = "; ".join(parts)
    report.add(Problem(int(run["_audit_seq"]), f"{name}: {detail}: edited outside the ledger", subject))
