"""Incremental verification of the audit chain, and the signed record of each verification.

A verification that passes is recorded in ``audit_verifications``: how far (``seq``, ``head_hash``), how
(``full`` or ``incremental``), when and with what result, signed with the ledger's Ed25519 key. The next
incremental verification starts there: it checks that record's signature (public key only), that the
event at its ``seq`` still has the recorded hash (and still hashes to it, with its signed head), then only
the events after it. Audited rows are always all checked: an edit behind the ledger's back appends no event.

What an incremental verification cannot see, an edit before its starting point that leaves that point's
hash alone, is found by the full verification (``charter audit verify --full``), which the integrity
monitor runs once a day (:func:`scheduled_verification`). A failed full verification is recorded too, and
every incremental verification after it reports the chain broken until a full one passes again.

Verifying needs only the public key(s); recording needs the signing key and is skipped without it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.core import keys
from charter_guardrails.core.errors import CharterError, ConfigError, KeyError_
from charter_guardrails.ledger.audit import GENESIS, ChainReport, Problem, _iso, canonical, event_hash
from charter_guardrails.ledger.audit_stream import (
    UNREADABLE,
    Anchor,
    Progress,
    Start,
    check_head,
    read_anchor,
    scan,
    unreadable,
)
from charter_guardrails.ledger.models import AuditCheckpoint, AuditEvent, AuditVerification

FULL = "full"
INCREMENTAL = "incremental"
#: Most events a page request (the view's audit page, the charter report) verifies after the last
#: verification; beyond that it says so and leaves them to ``charter audit verify`` and the integrity monitor.
VIEW_MAX_EVENTS = 5000


class VerificationBacklog(CharterError):
    """More events since the last verification than a page request verifies."""

    def __init__(self, pending: int, since: int, limit: int) -> None:
        super().__init__(
            f"{pending} events were appended since the last verified event ({since}), more than the {limit} a "
            "page verifies: run `charter audit verify` (the hourly integrity monitor does it too)"
        )
        self.pending, self.since = pending, since


def verification_message(row: AuditVerification) -> bytes:
    """What a verification record's signature covers: every column but ``id``, ``signature`` and ``key_id``."""
    fields = {
        "mode": row.mode,
        "seq": int(row.seq),
        "head_hash": row.head_hash,
        "ok": bool(row.ok),
        "events": int(row.events),
        "problems": int(row.problems),
        "first_broken": None if row.first_broken is None else int(row.first_broken),
        "seconds": repr(float(row.seconds)),
        "verified_at": _iso(row.verified_at),
    }
    return b"charter-audit-verification:" + canonical(fields)


def record_verification(
    session: Session, report: ChainReport, *, now: datetime | None = None
) -> AuditVerification | None:
    """Sign and store ``report`` in the caller's transaction; None when this process holds no signing key."""
    try:
        signing_key = keys.load_signing_key()
    except KeyError_:
        return None
    first = report.first_broken
    row = AuditVerification(
        mode=report.mode,
        seq=report.head_seq or 0,
        head_hash=report.head_hash or GENESIS,
        ok=report.ok,
        events=report.checked,
        problems=len(report.problems) + report.problems_omitted,
        first_broken=first.seq if first is not None else None,
        seconds=round(report.seconds, 3),
        verified_at=now or datetime.now(UTC),
    )
    row.signature, row.key_id = keys.sign(verification_message(row), signing_key)
    session.add(row)
    session.flush()
    return row


def _authentic(row: AuditVerification, public_keys: Mapping[str, Any]) -> bool:
    key = public_keys.get(row.key_id)
    return key is not None and keys.verify_signature(verification_message(row), row.signature, key)


def _latest_passed(session: Session) -> AuditVerification | None:
    query = (
        select(AuditVerification)
        .where(AuditVerification.ok.is_(True))
        .order_by(AuditVerification.seq.desc(), AuditVerification.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def _latest_full(session: Session) -> AuditVerification | None:
    query = (
        select(AuditVerification)
        .where(AuditVerification.mode == FULL)
        .order_by(AuditVerification.verified_at.desc(), AuditVerification.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def _start(session: Session, report: ChainReport, public_keys: Mapping[str, Any]) -> Start:
    """The latest passed verification, checked again: its signature, and the event at its position."""
    row = _latest_passed(session)
    if row is None:
        return Start()
    seq, recorded = int(row.seq), row.head_hash
    if not _authentic(row, public_keys):
        report.add(
            Problem(
                seq or None,
                f"the record of the verification up to event {seq} has an invalid signature "
                "(edited outside the ledger): run `charter audit verify --full`",
            )
        )
    if seq == 0:
        return Start(0, GENESIS)
    _check_position(session, report, public_keys, seq, recorded)
    return Start(seq, recorded)


def _check_position(
    session: Session, report: ChainReport, public_keys: Mapping[str, Any], seq: int, recorded: str
) -> None:
    """The event where the last verification stopped still has the recorded hash, hashes to it and is signed."""
    event = session.scalars(select(AuditEvent).where(AuditEvent.seq == seq)).first()
    if event is None:
        report.add(Problem(seq, f"event {seq}, verified before, is missing: run `charter audit verify --full`"))
        return
    if event.hash != recorded or event_hash(event) != recorded:
        report.add(
            Problem(seq, f"event {seq} changed since it was verified (edited): run `charter audit verify --full`")
        )
    head = session.execute(
        select(
            AuditCheckpoint.seq.label("head_seq"),
            AuditCheckpoint.head_hash,
            AuditCheckpoint.signature,
            AuditCheckpoint.key_id,
        ).where(AuditCheckpoint.seq == seq)
    ).first()
    if head is None:
        report.add(Problem(seq, f"the signed head of event {seq} is missing (deleted)"))
    else:
        check_head(report, public_keys, head, event.hash)


def _check_last_full(session: Session, report: ChainReport, public_keys: Mapping[str, Any]) -> None:
    """A failed (or forged) last full verification keeps the chain reported broken until a full one passes."""
    row = _latest_full(session)
    if row is None:
        return
    when = _iso(row.verified_at)
    if not _authentic(row, public_keys):
        report.add(
            Problem(
                None,
                f"the record of the full verification of {when} has an invalid signature (edited outside the "
                "ledger): run `charter audit verify --full`",
            )
        )
    elif not row.ok:
        report.add(
            Problem(
                row.first_broken,
                f"the full verification of {when} found {row.problems} problem(s), first at event "
                f"{row.first_broken}: restore the ledger, then run `charter audit verify --full`",
            )
        )


def verify_incremental(
    session: Session,
    public_keys: dict[str, Any] | None = None,
    *,
    anchor: Path | Anchor | None = None,
    max_events: int | None = None,
    progress: Progress | None = None,
) -> ChainReport:
    """The events after the latest passed verification, that verification itself, and every audited row.

    :raises VerificationBacklog: when more than ``max_events`` events follow that verification (a page request).
    """
    anchor = anchor if isinstance(anchor, Anchor) else read_anchor(anchor)  # before the chain: see audit_stream
    public_keys = public_keys if public_keys is not None else keys.load_trusted_public_keys()
    began = time.perf_counter()
    report = ChainReport(mode=INCREMENTAL)
    try:
        start = _start(session, report, public_keys)
        _check_last_full(session, report, public_keys)
    except UNREADABLE as exc:  # the verified position itself was overwritten: nothing after it can be trusted
        report.add(unreadable(exc))
        report.seconds = time.perf_counter() - began
        return report
    if max_events is not None:
        head = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) or 0
        if head - start.seq > max_events:
            raise VerificationBacklog(head - start.seq, start.seq, max_events)
    report.seconds = time.perf_counter() - began
    return scan(session, start, public_keys, anchor=anchor, progress=progress, report=report)


def verify_full(
    session: Session,
    public_keys: dict[str, Any] | None = None,
    *,
    anchor: Path | Anchor | None = None,
    progress: Progress | None = None,
) -> ChainReport:
    """Every event from the genesis, every signed head, the anchor file and every audited row, streamed."""
    return scan(session, Start(), public_keys, anchor=anchor, progress=progress, report=ChainReport(mode=FULL))


def should_record(report: ChainReport) -> bool:
    """A full verification is always recorded (the view shows its result); an incremental one when it passed
    and went further than where it started."""
    if report.mode == FULL:
        return True
    return report.ok and (report.head_seq or 0) > report.since_seq


@dataclass
class Verification:
    """A verification run by :func:`run_verification`: its report, whether it was recorded, the last full one."""

    report: ChainReport
    recorded: bool
    last_full: dict[str, Any] | None
    #: Why it was not recorded, when it was not.
    not_recorded: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            **self.report.to_json_dict(),
            "recorded": self.recorded,
            "not_recorded": self.not_recorded,
            "last_full": self.last_full,
        }

    def summary(self) -> dict[str, Any]:
        """A short JSON-safe outcome with one sentence (``message``): event numbers and reasons, no row values."""
        report, first = self.report, self.report.first_broken
        problems = len(report.problems) + report.problems_omitted
        if report.ok:
            message = (
                f"audit chain intact ({report.mode} verification): {report.events} events, head {report.head_seq}, "
                f"{report.checked} read in {report.seconds:.1f} s"
            )
        else:
            where = f"event {first.seq}" if first is not None and first.seq is not None else "the audited rows"
            message = (
                f"audit chain BROKEN ({report.mode} verification): {problems} problem(s), first at {where}: "
                f"{first.reason if first else ''}. `charter audit verify --full` lists every problem; restore the "
                "ledger from its backup (docs/deployment.md)"
            )
        return {
            "ok": report.ok,
            "mode": report.mode,
            "events": report.events,
            "head_seq": report.head_seq,
            "checked": report.checked,
            "seconds": round(report.seconds, 3),
            "problems": problems,
            "first_broken": first.to_json_dict() if first else None,
            "recorded": self.recorded,
            "message": message,
        }


@contextmanager
def _reading_session() -> Iterator[Session]:
    """A ledger session whose transaction only reads: on SQLite a snapshot (deferred ``BEGIN``), so that a long
    full verification does not hold the write lock that every append needs."""
    from charter_guardrails.ledger import store
    from charter_guardrails.ledger.db import READ_SNAPSHOT

    with store.ledger_session() as session:
        session.connection(execution_options={READ_SNAPSHOT: True})
        yield session


def run_verification(*, full: bool, progress: Progress | None = None, now: datetime | None = None) -> Verification:
    """``charter audit verify [--full]``: verify in a reading transaction, then record the result in another
    (``now``, the time recorded, is the current time unless given)."""
    from charter_guardrails.ledger import store

    anchor = read_anchor()
    with _reading_session() as session:
        if full:
            report = verify_full(session, anchor=anchor, progress=progress)
        else:
            report = verify_incremental(session, anchor=anchor, progress=progress)
    not_recorded: str | None = None
    with store.ledger_session() as session:
        if not should_record(report):
            not_recorded = "nothing after the last verification" if report.ok else "an incremental verification failed"
        elif record_verification(session, report, now=now) is None:
            not_recorded = "no signing key in this process"
        last_full = last_full_verification(session)
    return Verification(report, not_recorded is None, last_full, not_recorded)


def last_full_verification(session: Session, public_keys: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The latest full verification, for display: when, its result, and whether its record is authentic."""
    try:
        row = _latest_full(session)
    except UNREADABLE:  # overwritten behind the ledger's back with what its columns cannot hold
        keys_ = ("at", "head_seq", "events", "problems", "first_broken", "seconds")
        return {**dict.fromkeys(keys_), "ok": False, "authentic": False}
    if row is None:
        return None
    try:
        public_keys = public_keys if public_keys is not None else keys.load_trusted_public_keys()
        authentic: bool | None = _authentic(row, public_keys)
    except KeyError_:
        authentic = None
    return {
        "at": _iso(row.verified_at),
        "ok": bool(row.ok),
        "head_seq": int(row.seq),
        "events": int(row.events),
        "problems": int(row.problems),
        "first_broken": row.first_broken,
        "seconds": float(row.seconds),
        "authentic": authentic,
    }


def chain_summary(session: Session, *, max_events: int = VIEW_MAX_EVENTS) -> dict[str, Any]:
    """The chain's state for a page (the view, the charter report): an incremental verification bounded by
    ``max_events``, recorded when it advanced, and the last full verification. Never a full verification.

    ``ok`` is None, with ``error``, when the chain could not be verified within the request.
    """
    data: dict[str, Any] = {"ok": None, "events": None, "head_seq": None, "problems": [], "pending": None}
    try:
        report = verify_incremental(session, max_events=max_events)
    except VerificationBacklog as exc:
        data.update(error=str(exc), pending=exc.pending, since_seq=exc.since)
    except (ConfigError, OSError) as exc:
        data["error"] = str(exc)
    else:
        if should_record(report):
            record_verification(session, report)
        data.update(report.to_json_dict(), error=None)
    data["last_full"] = last_full_verification(session)
    return data


def scheduled_verification(*, now: datetime | None = None, progress: Progress | None = None) -> Verification:
    """The integrity monitor's run: full when no full verification was recorded yet this UTC day, else
    incremental. Hourly runs keep the incremental backlog small; the first run of each day re-reads it all."""
    from charter_guardrails.ledger import store

    now = now or datetime.now(UTC)
    with store.ledger_session() as session:
        last = _latest_full(session)
        full = last is None or last.verified_at.astimezone(UTC).date() < now.astimezone(UTC).date()
    return run_verification(full=full, progress=progress, now=now)
