"""Attestations of the governance team for the engagements that no pipeline can show are kept.

An organisational engagement (``equite.3``, ``maitrise_humaine.5``, ``durabilite.2``) is kept only on
the word of the governance team, and the mixed ``durabilite.3`` needs the Comité's word for its
organisational part. An attestation says what was done (``statement``), where the proof lies
(``document_ref``: minutes, attendance sheet, deliberation), who attests (``attested_by``), on which
day, and until when it holds (``expires_on``, inclusive).

Attestations are events of the signed audit chain (action :data:`ATTESTATION_ACTION`, the engagement
and every field in the payload): they are append-only, signed and verified with the rest of the
ledger, and need no table of their own. A newer attestation of the same engagement supersedes an
older one; none is ever edited or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.core.engagements import Engagement, engagement_by_id, load_engagements
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.models import AuditEvent
from charter_guardrails.reporting.scrubbing import mask_personal_values

ATTESTATION_ACTION = "attestation.recorded"
MIN_STATEMENT_CHARS = 20
MAX_STATEMENT_CHARS = 2000
MAX_FIELD_CHARS = 256


@dataclass(frozen=True)
class Attestation:
    """One recorded attestation, read back from its audit event."""

    seq: int
    engagement_id: str
    statement: str
    document_ref: str
    attested_by: str
    attested_on: date
    expires_on: date
    recorded_by: str
    recorded_at: datetime

    def valid_on(self, day: date) -> bool:
        """Attested on or before ``day`` and not expired on it (``expires_on`` is the last valid day)."""
        return self.attested_on <= day <= self.expires_on

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "engagement": self.engagement_id,
            "statement": mask_personal_values(self.statement),
            "document_ref": mask_personal_values(self.document_ref),
            "attested_by": self.attested_by,
            "attested_on": self.attested_on.isoformat(),
            "expires_on": self.expires_on.isoformat(),
            "recorded_by": self.recorded_by,
            "recorded_at": self.recorded_at.astimezone(UTC).isoformat(),
        }


def attestable_engagements() -> list[str]:
    """The ids of the engagements that need an attestation (organisational and mixed), in charter order."""
    return [e.id for e in load_engagements() if e.needs_attestation]


def _text(name: str, value: str, *, minimum: int = 1, maximum: int = MAX_FIELD_CHARS) -> str:
    value = (value or "").strip()
    if len(value) < minimum:
        what = "is empty" if not value else f"has {len(value)} characters"
        raise ConfigError(f"the attestation's {name} {what}; it needs at least {minimum} characters")
    if len(value) > maximum:
        raise ConfigError(f"the attestation's {name} has {len(value)} characters; keep it under {maximum}")
    if mask_personal_values(value) != value:
        raise ConfigError(
            f"the attestation's {name} contains a personal value (e-mail, phone number, NIR or IBAN); "
            "name the document and the people by their role instead"
        )
    return value


def _attestable(engagement_id: str) -> Engagement:
    """The engagement, if it is one that needs an attestation; a ``ConfigError`` saying which do otherwise."""
    try:
        engagement = engagement_by_id(engagement_id)
    except KeyError:
        raise ConfigError(
            f"{engagement_id!r} is not an engagement of the charter; "
            f"engagements that need an attestation: {', '.join(attestable_engagements())}"
        ) from None
    if not engagement.needs_attestation:
        raise ConfigError(
            f"{engagement_id} is an automated engagement: its evidence is the results of its controls and its "
            f"sources, not an attestation; engagements that need one: {', '.join(attestable_engagements())}"
        )
    return engagement


def _check_days(attested_on: date, expires_on: date, today: date) -> None:
    if isinstance(attested_on, datetime) or isinstance(expires_on, datetime):
        raise ConfigError("attestation dates are days (a date), not instants")
    if attested_on > today:
        raise ConfigError(f"the attestation date {attested_on} is in the future; record it on or after that day")
    if expires_on <= attested_on:
        raise ConfigError(
            f"the attestation expires on {expires_on}, not after the day it was given ({attested_on}); "
            "give an expiry date after the attestation date"
        )


def record_attestation(
    session: Session,
    *,
    engagement_id: str,
    statement: str,
    document_ref: str,
    attested_by: str,
    attested_on: date,
    expires_on: date,
    recorded_by: str | None = None,
    today: date | None = None,
) -> Attestation:
    """Record an attestation in the audit chain, in the caller's transaction.

    :param engagement_id: an engagement that needs an attestation (``equite.3``); any other is a ``ConfigError``.
    :param statement: what was done, at least :data:`MIN_STATEMENT_CHARS` characters.
    :param document_ref: where the proof lies (minutes, deliberation, attendance sheet).
    :param attested_by: the named person who attests.
    :param attested_on: the day of the attestation; not in the future.
    :param expires_on: the last day it holds; after ``attested_on``.
    :param recorded_by: who records it (the audit event's actor); by default ``attested_by``.
    :raises ConfigError: with what to correct.
    """
    engagement = _attestable(engagement_id)
    statement = _text("statement", statement, minimum=MIN_STATEMENT_CHARS, maximum=MAX_STATEMENT_CHARS)
    document_ref = _text("document reference", document_ref)
    attested_by = _text("attested_by (the person who attests)", attested_by)
    _check_days(attested_on, expires_on, today or datetime.now(UTC).date())
    actor = (recorded_by or attested_by).strip() or attested_by
    event = append_event(
        session,
        actor=actor,
        action=ATTESTATION_ACTION,
        payload={
            "engagement": engagement.id,
            "statement": statement,
            "document_ref": document_ref,
            "attested_by": attested_by,
            "attested_on": attested_on.isoformat(),
            "expires_on": expires_on.isoformat(),
        },
    )
    return Attestation(
        seq=int(event.seq),
        engagement_id=engagement.id,
        statement=statement,
        document_ref=document_ref,
        attested_by=attested_by,
        attested_on=attested_on,
        expires_on=expires_on,
        recorded_by=actor,
        recorded_at=event.ts,
    )


def _from_event(event: AuditEvent) -> Attestation | None:
    payload = event.payload if isinstance(event.payload, dict) else {}
    try:
        return Attestation(
            seq=int(event.seq),
            engagement_id=str(payload["engagement"]),
            statement=str(payload["statement"]),
            document_ref=str(payload["document_ref"]),
            attested_by=str(payload["attested_by"]),
            attested_on=date.fromisoformat(str(payload["attested_on"])),
            expires_on=date.fromisoformat(str(payload["expires_on"])),
            recorded_by=event.actor,
            recorded_at=event.ts,
        )
    except (KeyError, TypeError, ValueError):
        return None  # not an attestation this module wrote: it attests nothing


def list_attestations(session: Session, engagement_id: str | None = None) -> list[Attestation]:
    """Every recorded attestation (of one engagement if given), oldest first; unreadable events are left out."""
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == ATTESTATION_ACTION).order_by(AuditEvent.seq))
    found = [a for a in (_from_event(e) for e in events) if a is not None]
    return [a for a in found if engagement_id is None or a.engagement_id == engagement_id]


def _newest(attestations: list[Attestation]) -> Attestation:
    return max(attestations, key=lambda a: (a.attested_on, a.seq))


def current_attestations(attestations: list[Attestation], day: date) -> dict[str, Attestation]:
    """Per engagement, the newest attestation valid on ``day``."""
    by_engagement: dict[str, list[Attestation]] = {}
    for a in attestations:
        if a.valid_on(day):
            by_engagement.setdefault(a.engagement_id, []).append(a)
    return {engagement: _newest(items) for engagement, items in by_engagement.items()}


def latest_attestations(attestations: list[Attestation], day: date) -> dict[str, Attestation]:
    """Per engagement, the newest attestation given on or before ``day``, valid or expired."""
    by_engagement: dict[str, list[Attestation]] = {}
    for a in attestations:
        if a.attested_on <= day:
            by_engagement.setdefault(a.engagement_id, []).append(a)
    return {engagement: _newest(items) for engagement, items in by_engagement.items()}


def valid_attestations(session: Session, at: date | datetime) -> dict[str, Attestation]:
    """Per engagement, the newest attestation valid at ``at`` (a day, or an instant read as its UTC day)."""
    day = at.astimezone(UTC).date() if isinstance(at, datetime) else at
    return current_attestations(list_attestations(session), day)
