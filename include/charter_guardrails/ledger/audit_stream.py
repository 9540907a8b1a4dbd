"""Verifying the audit chain by streaming it: memory stays flat whatever the chain's length.

Events are read in ``seq`` order as plain rows (Core ``select`` with ``yield_per``, a server-side cursor
on PostgreSQL), each joined with its signed head, and checked as they arrive: the link to the previous
event, the event's own hash, the signature of its head. Only the previous hash is kept. The anchor file
and the heads without an event are then checked with one query each, and the audited rows against the
last event of each row, found by SQL (``ix_audit_events_subject``); check runs with their results and
findings, merged by run id (:mod:`~charter_guardrails.ledger.audit_rows`).

Every read is bounded by the last event at the start (``H``), so that events appended meanwhile (their
event and its signed head are written in one transaction) are neither half-seen nor reported as unsigned,
under PostgreSQL's READ COMMITTED as under SQLite's snapshot. The anchor file is read before the chain,
so that the event it names is already committed when the chain is read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, exists, func, select
from sqlalchemy.orm import Session

from charter_guardrails.core import keys
from charter_guardrails.core.settings import get_settings
from charter_guardrails.ledger.audit import (
    GENESIS,
    ChainReport,
    Problem,
    checkpoint_message,
    event_hash,
    mapping_digest,
)
from charter_guardrails.ledger.models import AUDITED_MODELS, AuditCheckpoint, AuditEvent, Base, CheckRun

#: Rows fetched per round trip; memory is bounded by this, not by the chain's length.
BATCH_ROWS = 2000
PROGRESS_EVERY_S = 10.0

Progress = Callable[[int, float], None]

_EVENTS = AuditEvent.__table__
_HEADS = AuditCheckpoint.__table__
_SUBJECT_EVENTS = _EVENTS.alias("subject_events")


@dataclass(frozen=True)
class Start:
    """Where a verification starts: after event ``seq`` whose hash is ``head_hash`` (the genesis for a full one)."""

    seq: int = 0
    head_hash: str = GENESIS


@dataclass(frozen=True)
class Anchor:
    """The anchor file as read before the chain: its signed head, or None when it is absent or unreadable."""

    path: Path
    exists: bool
    head: dict[str, Any] | None


def read_anchor(path: Path | None = None) -> Anchor:
    path = path or get_settings().audit_anchor
    if not path.exists():
        return Anchor(path, False, None)
    try:
        head = json.loads(path.read_text())
        if not isinstance(head, dict):
            return Anchor(path, True, None)
        return Anchor(path, True, head)
    except (OSError, ValueError):
        return Anchor(path, True, None)


#: What reading a value written behind the ledger's back raises (text that is not a timestamp in SQLite, say).
UNREADABLE = (ValueError, TypeError, AttributeError, LookupError)


def unreadable(exc: Exception) -> Problem:
    return Problem(
        None,
        f"the ledger holds a value it cannot read back ({type(exc).__name__}: {str(exc)[:160]}): "
        "written outside the ledger",
    )


class _Meter:
    """Calls ``progress(rows, seconds)`` about every :data:`PROGRESS_EVERY_S` seconds."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.rows = 0
        self.began = self.last = time.perf_counter()

    def tick(self) -> None:
        self.rows += 1
        if self.progress is not None and self.rows % 1024 == 0:
            now = time.perf_counter()
            if now - self.last >= PROGRESS_EVERY_S:
                self.last = now
                self.progress(self.rows, now - self.began)


def scan(
    session: Session,
    start: Start,
    public_keys: dict[str, Any] | None = None,
    *,
    anchor: Path | Anchor | None = None,
    progress: Progress | None = None,
    report: ChainReport | None = None,
) -> ChainReport:
    """Verify the events after ``start``, their signed heads, the anchor file and every audited row.

    A value the ledger cannot read back (text that is not a timestamp in SQLite, say) is a problem of the
    report, not an exception: it was written outside the ledger.
    """
    began = time.perf_counter()
    public_keys = public_keys if public_keys is not None else keys.load_trusted_public_keys()
    anchor = anchor if isinstance(anchor, Anchor) else read_anchor(anchor)
    report = report if report is not None else ChainReport()
    report.since_seq = start.seq
    try:
        _scan_into(report, session, start, public_keys, anchor, _Meter(progress))
    except UNREADABLE as exc:
        report.add(unreadable(exc))
    report.trim()
    report.seconds += time.perf_counter() - began
    return report


def _scan_into(
    report: ChainReport, session: Session, start: Start, public_keys: dict[str, Any], anchor: Anchor, meter: _Meter
) -> None:
    last = session.scalar(select(func.max(_EVENTS.c.seq)))
    if last is not None and last > start.seq:
        last_signed = session.scalar(select(func.max(_HEADS.c.seq)).where(_HEADS.c.seq <= last))
        _scan_events(report, session, start, last, last_signed, public_keys, meter)
        if last_signed != report.head_seq:
            report.add(
                Problem((last_signed or 0) + 1, f"events after the last signed head ({last_signed}) are not signed")
            )
    elif last is not None and last < start.seq:  # cut below the verified position (reported with it)
        report.head_seq, report.head_hash = last, None
    else:
        report.head_seq, report.head_hash = (start.seq, start.head_hash) if start.seq else (None, None)
    report.events = start.seq + report.checked
    _scan_orphan_heads(report, session, start, public_keys)
    _check_anchor(report, session, public_keys, anchor)
    verify_subjects(session, report)


def _scan_events(
    report: ChainReport,
    session: Session,
    start: Start,
    last: int,
    last_signed: int | None,
    public_keys: dict[str, Any],
    meter: _Meter,
) -> None:
    """Links, hashes and signed heads of the events in (start, last], in order, one batch in memory at a time."""
    stmt = (
        select(
            *_EVENTS.c,
            _HEADS.c.seq.label("head_seq"),
            _HEADS.c.head_hash,
            _HEADS.c.signature,
            _HEADS.c.key_id,
            _HEADS.c.signed_at,
        )
        .select_from(_EVENTS.outerjoin(_HEADS, _HEADS.c.seq == _EVENTS.c.seq))
        .where(_EVENTS.c.seq > start.seq, _EVENTS.c.seq <= last)
        .order_by(_EVENTS.c.seq)
    )
    expected, prev = start.seq + 1, start.head_hash
    with closing(session.execute(stmt, execution_options={"yield_per": BATCH_ROWS})) as rows:
        for row in rows:
            report.checked += 1
            meter.tick()
            if row.seq != expected:
                kind = "missing (deleted)" if row.seq > expected else "out of order"
                report.add(Problem(expected, f"event {expected} is {kind}; next stored event is {row.seq}"))
            elif row.prev_hash != prev:
                report.add(
                    Problem(row.seq, "prev_hash does not match the previous event (reordered, inserted or deleted)")
                )
            if event_hash(row) != row.hash:
                report.add(Problem(row.seq, "content does not match its hash (edited)"))
            if row.head_seq is not None:
                check_head(report, public_keys, row, row.hash)
            elif last_signed is not None and row.seq < last_signed:
                # append_event signs every head: an event without its signed head lost it behind the ledger's back
                report.add(Problem(row.seq, f"the signed head of event {row.seq} is missing (deleted)"))
            expected, prev = row.seq + 1, row.hash
    report.head_seq, report.head_hash = (expected - 1, prev) if expected > 1 else (None, None)


def check_head(report: ChainReport, public_keys: Mapping[str, Any], head: Any, stored_hash: str | None) -> None:
    """A signed head (a row with ``head_seq``, ``head_hash``, ``signature``, ``key_id``): its key is trusted, its
    signature verifies, and it names the stored event's hash."""
    seq = int(head.head_seq)
    key = public_keys.get(head.key_id)
    if key is None:
        report.add(Problem(seq, f"signed head {seq} uses unknown key {head.key_id}"))
    elif not keys.verify_signature(checkpoint_message(seq, head.head_hash), head.signature, key):
        report.add(Problem(seq, f"signature of head {seq} is invalid"))
    if stored_hash != head.head_hash:
        report.add(Problem(seq, f"signed head {seq} does not match the stored event"))


def _scan_orphan_heads(report: ChainReport, session: Session, start: Start, public_keys: dict[str, Any]) -> None:
    """Signed heads after ``start`` whose event is gone (a cut chain whose heads were left behind)."""
    stmt = (
        select(
            _HEADS.c.seq.label("head_seq"), _HEADS.c.head_hash, _HEADS.c.signature, _HEADS.c.key_id, _HEADS.c.signed_at
        )
        .where(_HEADS.c.seq > start.seq, ~exists().where(_EVENTS.c.seq == _HEADS.c.seq))
        .order_by(_HEADS.c.seq)
    )
    with closing(session.execute(stmt, execution_options={"yield_per": BATCH_ROWS})) as rows:
        for row in rows:
            check_head(report, public_keys, row, None)


def _check_anchor(report: ChainReport, session: Session, public_keys: dict[str, Any], anchor: Anchor) -> None:
    if not anchor.exists:
        return
    try:
        head = anchor.head or {}
        seq, head_hash = int(head["seq"]), str(head["hash"])
    except (ValueError, KeyError, TypeError):
        report.add(Problem(None, f"the anchor file {anchor.path} is unreadable"))
        return
    key = public_keys.get(str(head.get("key_id", "")))
    signature = head.get("signature", "")
    if key is None or not keys.verify_signature(checkpoint_message(seq, head_hash), str(signature), key):
        report.add(Problem(None, f"the anchor file {anchor.path} has an invalid signature"))
        return
    stored = session.scalar(select(_EVENTS.c.hash).where(_EVENTS.c.seq == seq))
    if stored is None:
        first_missing = (report.head_seq or 0) + 1
        report.add(
            Problem(
                first_missing,
                f"events {first_missing} to {seq} are missing: the chain ends before its signed anchor (truncated)",
            )
        )
    elif stored != head_hash:
        report.add(Problem(seq, f"event {seq} differs from the signed anchor"))


def _last_events(table: str, since_seq: int = 0) -> Any:
    """The last event of each row of ``table`` (with an event after ``since_seq``), by SQL over
    ``ix_audit_events_subject``: (subject_id, seq, action, run_id)."""
    last = (
        select(_EVENTS.c.subject_id, func.max(_EVENTS.c.seq).label("seq"))
        .where(_EVENTS.c.subject_type == table, _EVENTS.c.subject_id.is_not(None), _EVENTS.c.subject_id != "")
        .where(_EVENTS.c.seq > since_seq)
        .group_by(_EVENTS.c.subject_id)
        .subquery("last_seq")
    )
    return (
        select(last.c.subject_id, _EVENTS.c.seq, _EVENTS.c.action, _EVENTS.c.run_id)
        .join_from(last, _EVENTS, _EVENTS.c.seq == last.c.seq)
        .subquery("last_event")
    )


def verify_subjects(session: Session, report: ChainReport) -> None:
    """Every row of an audited table matches the digest of its last event; every audited row still exists.

    Always over every row: an edit behind the ledger's back appends no event, so no position in the chain
    tells which rows changed. Streamed: one row and its last event at a time.
    """
    from charter_guardrails.ledger.audit_rows import verify_runs

    for table, model in AUDITED_MODELS.items():
        if getattr(model, "__digest_children__", None):
            # the run with its results and findings, merged by run id; in an incremental verification only the
            # runs with an event after its start: those tables grow with the chain (see verify_runs)
            verify_runs(session, report, report.since_seq)
            _verify_deleted(session, report, table, model, report.since_seq)
        else:
            _verify_rows(session, report, table, model)
            _verify_deleted(session, report, table, model)


def _verify_rows(session: Session, report: ChainReport, table: str, model: type[Base]) -> None:
    rows_table = model.__table__
    row_id = rows_table.c.id
    # the row's last event: one index lookup per row (``ix_audit_events_subject``, MAX over its last key)
    last_seq = (
        select(func.max(_SUBJECT_EVENTS.c.seq))
        .where(_SUBJECT_EVENTS.c.subject_type == table, _SUBJECT_EVENTS.c.subject_id == cast(row_id, String))
        .scalar_subquery()
    )
    stmt = (
        select(*rows_table.c, _EVENTS.c.seq.label("_audit_seq"), _EVENTS.c.payload.label("_audit_payload"))
        .select_from(rows_table.outerjoin(_EVENTS, _EVENTS.c.seq == last_seq))
        .order_by(row_id)
    )
    with closing(session.execute(stmt, execution_options={"yield_per": BATCH_ROWS})) as rows:
        for row in rows:
            mapping = row._mapping
            subject = f"{table}#{mapping[row_id]}"
            if mapping["_audit_seq"] is None:
                report.add(Problem(None, f"row is not recorded in the audit chain ({_unrecorded(table)})", subject))
                continue
            payload = mapping["_audit_payload"]
            recorded = payload.get("row_digest") if isinstance(payload, dict) else None
            if recorded != mapping_digest(model, mapping):
                report.add(
                    Problem(
                        int(mapping["_audit_seq"]),
                        "row differs from its last audited state (edited outside the ledger)",
                        subject,
                    )
                )


def _unrecorded(table: str) -> str:
    from charter_guardrails.ledger.audit_rows import SEAL_HINT, SEALABLE

    return SEAL_HINT if table in SEALABLE else "inserted outside the ledger"


def _verify_deleted(session: Session, report: ChainReport, table: str, model: type[Base], since_seq: int = 0) -> None:
    """Rows whose last event is not a deletion but which no longer exist (``since_seq``: with an event after it)."""
    # NOT IN a subquery: both databases build its set once (SQLite an ephemeral index, PostgreSQL a hashed
    # subplan), where NOT EXISTS on ``CAST(id)`` would scan the table once per subject.
    existing = select(cast(model.__table__.c.id, String))
    last = _last_events(table, since_seq)
    stmt = (
        select(last.c.subject_id, last.c.seq, last.c.run_id)
        .where(last.c.subject_id.not_in(existing), ~last.c.action.endswith(".deleted"))
        .order_by(last.c.seq)
    )
    with closing(session.execute(stmt, execution_options={"yield_per": BATCH_ROWS})) as rows:
        for row in rows:
            run = f"run {row.run_id}: " if table == CheckRun.__tablename__ else ""
            report.add(
                Problem(
                    int(row.seq),
                    f"{run}audited row no longer exists (deleted outside the ledger)",
                    f"{table}#{row.subject_id}",
                )
            )
