"""The append-only audit chain.

Each event stores the hash of the previous one: ``hash = SHA-256(canonical JSON of the event,
prev_hash included)``. After every append the new head is signed with Ed25519 into
``audit_checkpoints``, and the signed head is also written to an anchor file outside the
database (``CHARTER_AUDIT_ANCHOR``), so that cutting the tail of the chain is detected too.
Events about a row of an audited table carry that row's digest: an edit of the row made
behind the ledger's back no longer matches its last event. A check run's digest also covers its results
and their PII findings (:mod:`~charter_guardrails.ledger.audit_rows`).

Verification needs only the public key(s): :func:`verify_chain` checks the whole chain, streaming
(:mod:`~charter_guardrails.ledger.audit_stream`); :mod:`~charter_guardrails.ledger.audit_verify` checks
only what was appended since the last signed verification, and records verifications.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event as sa_event
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from charter_guardrails.core import keys
from charter_guardrails.core.settings import get_settings
from charter_guardrails.ledger.models import AuditCheckpoint, AuditEvent, Base

GENESIS = "0" * 64
_PG_AUDIT_LOCK = 0x43484152  # "CHAR": serialises appends across workers on PostgreSQL


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default).encode("utf-8")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    return str(value)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def row_digest(row: Base) -> str:
    """SHA-256 over every column of an ORM row, in a backend-independent form.

    Columns a migration added later (the model's ``__digest_optional__``) count only once they hold a
    value, so that rows audited before the migration still verify. Columns of the model's
    ``__digest_excluded__`` (delivery bookkeeping that changes on every retry) never count.
    """
    return _digest(type(row), lambda column: getattr(row, column.key))


def mapping_digest(model: type[Base], row: Mapping[Any, Any]) -> str:
    """:func:`row_digest` of a row read with Core (``select(model.__table__)``), keyed by column: the same
    digest as the ORM object, without building one (the verification streams plain rows)."""
    return _digest(model, lambda column: row[column])


def _digest(model: type[Base], value_of: Callable[[Any], Any]) -> str:
    optional: frozenset[str] = getattr(model, "__digest_optional__", frozenset())
    excluded: frozenset[str] = getattr(model, "__digest_excluded__", frozenset())
    values = {}
    for column in model.__table__.columns:
        if column.name in excluded:
            continue
        value = value_of(column)
        if value is None and column.name in optional:
            continue
        if isinstance(value, datetime):
            value = _iso(value)
        elif isinstance(value, float):
            value = repr(value)
        values[column.name] = value
    return hashlib.sha256(canonical(values)).hexdigest()


class EventFields(Protocol):
    """What :func:`event_hash` reads: an :class:`AuditEvent` or a Core row of ``audit_events``."""

    @property
    def seq(self) -> int: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def subject_type(self) -> str | None: ...
    @property
    def subject_id(self) -> str | None: ...
    @property
    def use_case(self) -> str | None: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def payload(self) -> Any: ...
    @property
    def prev_hash(self) -> str: ...


def event_hash(ev: EventFields) -> str:
    body = {
        "seq": int(ev.seq),
        "ts": _iso(ev.ts),
        "actor": ev.actor,
        "action": ev.action,
        "subject_type": ev.subject_type,
        "subject_id": ev.subject_id,
        "use_case": ev.use_case,
        "run_id": ev.run_id,
        "payload": ev.payload,
        "prev_hash": ev.prev_hash,
    }
    return hashlib.sha256(canonical(body)).hexdigest()


def checkpoint_message(seq: int, head_hash: str) -> bytes:
    return f"charter-audit-head:{seq}:{head_hash}".encode("ascii")


def subject_digest(session: Session, subject: Base) -> dict[str, Any]:
    """What an event about ``subject`` records of it: ``row_digest``, and for a check run (a model with
    ``__digest_children__``) the composite digest of the run and its rows, with their counts."""
    if getattr(type(subject), "__digest_children__", None):
        from charter_guardrails.ledger.audit_rows import run_state

        return run_state(session, int(subject.id))  # type: ignore[attr-defined]  # a check run has an id
    return {"row_digest": row_digest(subject)}


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: Base | None = None,
    use_case: str | None = None,
    run_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event in the caller's transaction. Commit makes it durable with the subject row."""
    payload = dict(payload or {})
    subject_type = subject_id = None
    session.flush()  # ids and column defaults
    if session.get_bind().dialect.name == "postgresql":
        # Before the digest: a check run's digest reads its rows, and another transaction appending about the
        # same run (a parallel task) has committed its rows once it releases the lock (READ COMMITTED).
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    if subject is not None:
        subject_type = subject.__tablename__
        subject_id = str(subject.id)  # type: ignore[attr-defined]  # audited models have an id; Base declares none
        payload.update(subject_digest(session, subject))
    last = session.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq = (last.seq + 1) if last else 1
    ev = AuditEvent(
        seq=seq,
        ts=datetime.now(UTC),
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        use_case=use_case,
        run_id=run_id,
        payload=json.loads(canonical(payload)),
        prev_hash=last.hash if last else GENESIS,
    )
    ev.hash = event_hash(ev)
    signing_key = keys.load_signing_key()
    signature, kid = keys.sign(checkpoint_message(seq, ev.hash), signing_key)
    session.add(ev)
    session.add(AuditCheckpoint(seq=seq, head_hash=ev.hash, signature=signature, key_id=kid))
    session.flush()
    _remember_head(session, {"seq": seq, "hash": ev.hash, "signature": signature, "key_id": kid})
    return ev


def _remember_head(session: Session, head: dict[str, Any]) -> None:
    session.info["charter_audit_head"] = head
    if not session.info.get("charter_audit_listener"):
        sa_event.listen(session, "after_commit", _write_anchor_after_commit)
        sa_event.listen(session, "after_rollback", _forget_head)
        session.info["charter_audit_listener"] = True


# SQLAlchemy fires after_commit and after_rollback for a SAVEPOINT too (``begin_nested``, used by
# get_or_create and raise_incident): only the outermost transaction decides whether the events are
# durable. Writing the anchor at a SAVEPOINT release would sign a head that a failed commit then
# never stores, and ``charter audit verify`` would report a truncated chain.
def _forget_head(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop("charter_audit_head", None)


def _write_anchor_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    head = session.info.pop("charter_audit_head", None)
    if head is None:
        return
    anchor = get_settings().audit_anchor
    try:
        current = json.loads(anchor.read_text()) if anchor.exists() else None
    except (OSError, ValueError):
        current = None
    if current and int(current.get("seq", 0)) >= head["seq"]:
        return
    write_anchor(anchor, head)


def write_anchor(anchor: Path, head: dict[str, Any]) -> None:
    anchor.parent.mkdir(parents=True, exist_ok=True)
    tmp = anchor.with_name(f".{anchor.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(head, sort_keys=True) + "\n")
    os.replace(tmp, anchor)


#: Problems kept in a report: a chain rewritten from its first event would otherwise fill memory with them.
MAX_PROBLEMS = 1000


@dataclass
class Problem:
    seq: int | None
    reason: str
    subject: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "subject": self.subject, "reason": self.reason}


def _problem_order(problem: Problem) -> tuple[bool, int]:
    return (problem.seq is None, problem.seq or 0)


@dataclass
class ChainReport:
    """What a verification found. ``events`` counts the events the verified chain holds (for an incremental
    verification: those up to its starting point plus the ``checked`` ones read after it)."""

    events: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    problems: list[Problem] = field(default_factory=list)
    #: full | incremental, and the event after which an incremental verification started (0: the genesis).
    mode: str = "full"
    since_seq: int = 0
    checked: int = 0
    seconds: float = 0.0
    #: Problems left out beyond :data:`MAX_PROBLEMS` (the ones with the lowest event numbers are kept).
    problems_omitted: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.problems_omitted

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)
        if len(self.problems) > 2 * MAX_PROBLEMS:
            self.trim()

    def trim(self) -> None:
        """Sort the problems by event and keep the first :data:`MAX_PROBLEMS`."""
        self.problems.sort(key=_problem_order)
        self.problems_omitted += max(0, len(self.problems) - MAX_PROBLEMS)
        del self.problems[MAX_PROBLEMS:]

    @property
    def first_broken(self) -> Problem | None:
        with_seq = [p for p in self.problems if p.seq is not None]
        return min(with_seq, key=lambda p: p.seq or 0) if with_seq else (self.problems[0] if self.problems else None)

    def to_json_dict(self) -> dict[str, Any]:
        first = self.first_broken
        return {
            "ok": self.ok,
            "mode": self.mode,
            "events": self.events,
            "head_seq": self.head_seq,
            "since_seq": self.since_seq,
            "checked": self.checked,
            "seconds": round(self.seconds, 3),
            "first_broken": first.to_json_dict() if first else None,
            "problems": [p.to_json_dict() for p in self.problems],
            "problems_omitted": self.problems_omitted,
        }


def verify_chain(
    session: Session,
    public_keys: dict[str, Any] | None = None,
    *,
    anchor: Path | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> ChainReport:
    """Check the whole chain: links, hashes, signed heads, the anchor file and the audited rows.

    Streams the events in order with bounded memory (:func:`~charter_guardrails.ledger.audit_stream.scan`);
    ``progress(rows, seconds)`` is called about every 10 s on a long chain. Records nothing: see
    :func:`charter_guardrails.ledger.audit_verify.run_verification` for that.
    """
    from charter_guardrails.ledger.audit_stream import Start, scan

    return scan(session, Start(), public_keys, anchor=anchor, progress=progress)
