"""The append-only audit chain.

Each event stores the hash of the previous one: ``hash = SHA-256(canonical JSON of the event,
prev_hash included)``. After every append the new head is signed with Ed25519 into
``audit_checkpoints``, and the signed head is also written to an anchor file outside the
database (``CHARTER_AUDIT_ANCHOR``), so that cutting the tail of the chain is detected too.
Events about a row of an audited table carry that row's digest: an edit of the row made
behind the ledger's back no longer matches its last event.

:func:`verify_chain` needs only the public key(s).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from charter_guardrails.core import keys
from charter_guardrails.core.settings import get_settings
from charter_guardrails.ledger.models import AUDITED_MODELS, AuditCheckpoint, AuditEvent, Base

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
    value, so that rows audited before the migration still verify.
    """
    optional: frozenset[str] = getattr(type(row), "__digest_optional__", frozenset())
    values = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if value is None and column.name in optional:
            continue
        if isinstance(value, datetime):
            value = _iso(value)
        elif isinstance(value, float):
            value = repr(value)
        values[column.name] = value
    return hashlib.sha256(canonical(values)).hexdigest()


def event_hash(ev: AuditEvent) -> str:
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
    if subject is not None:
        session.flush()  # ids and column defaults
        subject_type = subject.__tablename__
        subject_id = str(subject.id)  # type: ignore[attr-defined]  # audited models have an id; Base declares none
        payload["row_digest"] = row_digest(subject)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
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


@dataclass
class Problem:
    seq: int | None
    reason: str
    subject: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "subject": self.subject, "reason": self.reason}


@dataclass
class ChainReport:
    events: int = 0
    head_seq: int | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_broken(self) -> Problem | None:
        with_seq = [p for p in self.problems if p.seq is not None]
        return min(with_seq, key=lambda p: p.seq or 0) if with_seq else (self.problems[0] if self.problems else None)

    def to_json_dict(self) -> dict[str, Any]:
        first = self.first_broken
        return {
            "ok": self.ok,
            "events": self.events,
            "head_seq": self.head_seq,
            "first_broken": first.to_json_dict() if first else None,
            "problems": [p.to_json_dict() for p in self.problems],
        }


def verify_chain(
    session: Session, public_keys: dict[str, Any] | None = None, *, anchor: Path | None = None
) -> ChainReport:
    """Check links, hashes, signed heads, the anchor file and the audited rows."""
    public_keys = public_keys if public_keys is not None else keys.load_trusted_public_keys()
    report = ChainReport()
    try:
        _verify_into(report, session, public_keys, anchor)
    except (ValueError, TypeError, AttributeError, LookupError) as exc:
        # e.g. text that is not a timestamp in SQLite's ts column: the ORM cannot even read the row back
        report.problems.append(
            Problem(
                None,
                f"the ledger holds a value it cannot read back ({type(exc).__name__}: "
                f"{str(exc)[:160]}): written outside the ledger",
            )
        )
    report.problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return report


def _verify_into(report: ChainReport, session: Session, public_keys: dict[str, Any], anchor: Path | None) -> None:
    hashes: dict[int, str] = {}
    last_subject_event: dict[tuple[str, str], AuditEvent] = {}
    expected_seq, prev = 1, GENESIS
    for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        report.events += 1
        if ev.seq != expected_seq:
            kind = "missing (deleted)" if ev.seq > expected_seq else "out of order"
            report.problems.append(
                Problem(expected_seq, f"event {expected_seq} is {kind}; next stored event is {ev.seq}")
            )
        elif ev.prev_hash != prev:
            report.problems.append(
                Problem(ev.seq, "prev_hash does not match the previous event (reordered, inserted or deleted)")
            )
        if event_hash(ev) != ev.hash:
            report.problems.append(Problem(ev.seq, "content does not match its hash (edited)"))
        hashes[ev.seq] = ev.hash
        if ev.subject_type and ev.subject_id:
            last_subject_event[(ev.subject_type, ev.subject_id)] = ev
        expected_seq, prev = ev.seq + 1, ev.hash
    report.head_seq = expected_seq - 1 if report.events else None

    checkpoints = list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))
    for cp in checkpoints:
        key = public_keys.get(cp.key_id)
        if key is None:
            report.problems.append(Problem(cp.seq, f"signed head {cp.seq} uses unknown key {cp.key_id}"))
        elif not keys.verify_signature(checkpoint_message(cp.seq, cp.head_hash), cp.signature, key):
            report.problems.append(Problem(cp.seq, f"signature of head {cp.seq} is invalid"))
        if hashes.get(cp.seq) != cp.head_hash:
            report.problems.append(Problem(cp.seq, f"signed head {cp.seq} does not match the stored event"))
    if report.head_seq is not None and (not checkpoints or checkpoints[-1].seq != report.head_seq):
        signed = checkpoints[-1].seq if checkpoints else None
        report.problems.append(
            Problem((signed or 0) + 1, f"events after the last signed head ({signed}) are not signed")
        )
    # append_event signs every head: an event without its signed head lost it behind the ledger's back
    signed_seqs = {cp.seq for cp in checkpoints}
    last_signed = checkpoints[-1].seq if checkpoints else 0
    for seq in sorted(s for s in hashes if s < last_signed and s not in signed_seqs):
        report.problems.append(Problem(seq, f"the signed head of event {seq} is missing (deleted)"))

    _verify_anchor(report, hashes, public_keys, anchor or get_settings().audit_anchor)
    _verify_subjects(session, report, last_subject_event)


def _verify_anchor(report: ChainReport, hashes: dict[int, str], public_keys: dict[str, Any], anchor: Path) -> None:
    if not anchor.exists():
        return
    try:
        head = json.loads(anchor.read_text())
        seq, head_hash = int(head["seq"]), str(head["hash"])
    except (OSError, ValueError, KeyError, TypeError):
        report.problems.append(Problem(None, f"the anchor file {anchor} is unreadable"))
        return
    key = public_keys.get(head.get("key_id", ""))
    if key is None or not keys.verify_signature(checkpoint_message(seq, head_hash), head.get("signature", ""), key):
        report.problems.append(Problem(None, f"the anchor file {anchor} has an invalid signature"))
    elif seq not in hashes:
        first_missing = (report.head_seq or 0) + 1
        report.problems.append(
            Problem(
                first_missing,
                f"events {first_missing} to {seq} are missing: the chain ends before its signed anchor (truncated)",
            )
        )
    elif hashes[seq] != head_hash:
        report.problems.append(Problem(seq, f"event {seq} differs from the signed anchor"))


def _verify_subjects(session: Session, report: ChainReport, last_events: dict[tuple[str, str], AuditEvent]) -> None:
    seen: set[tuple[str, str]] = set()
    for table, model in AUDITED_MODELS.items():
        for row in session.scalars(select(model)):
            row_id = row.id  # type: ignore[attr-defined]  # audited models have an id; Base declares none
            ident = (table, str(row_id))
            seen.add(ident)
            ev = last_events.get(ident)
            if ev is None:
                report.problems.append(
                    Problem(
                        None,
                        "row is not recorded in the audit chain (inserted outside the ledger)",
                        f"{table}#{row_id}",
                    )
                )
            elif (ev.payload if isinstance(ev.payload, dict) else {}).get("row_digest") != row_digest(row):
                report.problems.append(
                    Problem(
                        ev.seq,
                        "row differs from its last audited state (edited outside the ledger)",
                        f"{table}#{row_id}",
                    )
                )
    for ident, ev in last_events.items():
        if ident[0] in AUDITED_MODELS and ident not in seen and not ev.action.endswith(".deleted"):
            report.problems.append(
                Problem(ev.seq, "audited row no longer exists (deleted outside the ledger)", f"{ident[0]}#{ident[1]}")
            )
