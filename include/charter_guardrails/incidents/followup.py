"""Follow-ups of an incident: reminders before the 72-hour deadline, and escalation when nobody acknowledges.

:func:`queue_followups` is run by the relay before each delivery pass (every minute in Airflow). It
writes rows to the same ``alert_outbox`` as the incident's first alert, so they are delivered at least
once by the same relay, with the same idempotency and retries. Every row is e-mail.

**Reminders** go to the security officer (``policy.incidents.security_officer``, else the policy's
``alert_recipients``) and the DPO, while the GDPR Art. 33 decision is open (no decision, or
``to_notify``). Threshold *h* of ``reminder_hours_before_deadline`` is due from ``notify_deadline − h``.

* Only the **most recent due threshold** is ever queued: when the relay was down past several
  thresholds, the reminder of the latest one is queued late and the earlier ones are never queued.
* A reminder still pending (not delivered yet) when a later threshold is queued is **superseded**: it
  is not sent, since its "due in 48 h" is no longer true. The same holds for every pending reminder
  once the decision is recorded or the incident is resolved.

**Escalation**: while the incident is ``open`` (not acknowledged), level *k* is due at
``detected_at + k × ack_within_hours`` and goes to contact *k* of ``policy.incidents.escalation``;
nothing more once the list is exhausted. Each due level is queued, also late ones, since each level is
another person. A pending escalation is superseded once the incident is acknowledged or resolved.

Each row's idempotency key is derived from (incident key, kind, threshold or level, recipient); the key
column is unique and rows are inserted with ``ON CONFLICT DO NOTHING`` (SQLite, PostgreSQL) after a
read of the keys already there, so running this every minute, or from two relays at once, or again
after a crash, queues each reminder once per threshold and recipient. Queuing and superseding are
audit events.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from charter_guardrails.core.errors import CharterError, ConfigError
from charter_guardrails.core.policy import UseCasePolicy, load_policy
from charter_guardrails.incidents.decisions import art33_open
from charter_guardrails.incidents.incident import IncidentStatus, incident_payload
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.audit_rows import outbox_event
from charter_guardrails.ledger.models import AlertOutbox, Incident

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = logging.getLogger(__name__)

ACTOR = "charter-incident-followup"
ALERT = "alert"
REMINDER = "reminder"
ESCALATION = "escalation"
#: Status of a pending outbox row that is no longer to be sent (a later reminder, a decision, an acknowledgement).
SUPERSEDED = "superseded"


@dataclass
class FollowupReport:
    """What one pass queued and superseded, and the use cases whose policy could not be loaded."""

    queued: int = 0
    reminders: int = 0
    escalations: int = 0
    superseded: int = 0
    skipped_use_cases: list[str] = field(default_factory=list)
    #: Why the pass could not run (see :func:`queue_due_followups_safely`); None when it ran.
    error: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "reminders": self.reminders,
            "escalations": self.escalations,
            "superseded": self.superseded,
            "skipped_use_cases": self.skipped_use_cases,
            "error": self.error,
        }


@dataclass(frozen=True)
class Followup:
    """One reminder threshold or escalation level due for an incident, and who receives it."""

    kind: str
    #: Hours before the deadline for a reminder; the level (1, 2 …) for an escalation.
    step: int
    recipients: tuple[str, ...]
    #: Payload fields that say which reminder or escalation this is.
    fields: dict[str, Any]


def reminder_recipients(policy: UseCasePolicy) -> tuple[str, ...]:
    """The security officer (else the policy's alert recipients) and the DPO, each once."""
    officer = policy.incidents.security_officer
    first = [str(officer.email)] if officer is not None else [str(r) for r in policy.alert_recipients]
    return tuple(dict.fromkeys([*first, str(policy.dpo.email)]))


def due_reminder_threshold(incident: Incident, policy: UseCasePolicy, now: datetime) -> int | None:
    """The most recent due threshold (hours before the deadline), or None: none due, or the decision is taken."""
    if incident.status == IncidentStatus.RESOLVED.value or not art33_open(incident):
        return None
    due = [
        h
        for h in policy.incidents.reminder_hours_before_deadline
        if now >= incident.notify_deadline - timedelta(hours=h)
    ]
    return min(due) if due else None


def due_followups(incident: Incident, policy: UseCasePolicy, now: datetime) -> list[Followup]:
    """Every reminder and escalation that should be in the outbox for ``incident`` at ``now``."""
    followups = []
    threshold = due_reminder_threshold(incident, policy, now)
    if threshold is not None:
        due_at = incident.notify_deadline - timedelta(hours=threshold)
        fields = {"kind": REMINDER, "threshold_hours": threshold, "due_at": due_at.isoformat()}
        followups.append(Followup(REMINDER, threshold, reminder_recipients(policy), fields))
    if incident.status == IncidentStatus.OPEN.value:
        ack = policy.incidents.ack_within_hours
        contacts = policy.incidents.escalation
        for level, contact in enumerate(contacts, start=1):
            if now < incident.detected_at + timedelta(hours=level * ack):
                break
            fields = {
                "kind": ESCALATION,
                "level": level,
                "levels": len(contacts),
                "after_hours": level * ack,
                "ack_within_hours": ack,
            }
            followups.append(Followup(ESCALATION, level, (str(contact.email),), fields))
    return followups


def followup_key(incident_key: str, kind: str, step: int, recipient: str) -> str:
    """The idempotency key of one follow-up row: one per incident, kind, threshold or level, and recipient."""
    return hashlib.sha256(f"{incident_key}|{kind}|{step}|email|{recipient}".encode()).hexdigest()[:40]


def _insert_once(session: Session, values: dict[str, Any]) -> int | None:
    """Insert an outbox row unless its idempotency key exists (also against a concurrent relay); its id, or None."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(AlertOutbox)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(AlertOutbox)
    else:
        raise ConfigError(f"the alert outbox supports SQLite and PostgreSQL, not {dialect}; set CHARTER_LEDGER_URL")
    stmt = stmt.values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(AlertOutbox.id)
    row_id = session.execute(stmt).scalar_one_or_none()
    return int(row_id) if row_id is not None else None


def _queue(session: Session, incident: Incident, followup: Followup, now: datetime, report: FollowupReport) -> None:
    keys = {r: followup_key(incident.key, followup.kind, followup.step, r) for r in followup.recipients}
    present = set(
        session.scalars(select(AlertOutbox.idempotency_key).where(AlertOutbox.idempotency_key.in_(keys.values())))
    )
    payload = {**incident_payload(incident), **followup.fields}
    inserted = []
    for recipient, key in keys.items():
        if key in present:
            continue
        row_id = _insert_once(
            session,
            {
                "incident_id": incident.id,
                "channel": "email",
                "recipient": recipient,
                "idempotency_key": key,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
        if row_id is not None:
            inserted.append(row_id)
    if not inserted:
        return
    for row_id in inserted:
        row = session.get(AlertOutbox, row_id)
        if row is not None:
            outbox_event(session, row, actor=ACTOR, action="alert.queued", payload={"kind": followup.kind})
    report.queued += len(inserted)
    if followup.kind == REMINDER:
        report.reminders += len(inserted)
    else:
        report.escalations += len(inserted)
    append_event(
        session,
        actor=ACTOR,
        action="incident.reminder_queued" if followup.kind == REMINDER else "incident.escalated",
        subject=incident,
        use_case=incident.use_case,
        run_id=incident.run_id,
        payload={**followup.fields, "outbox_ids": inserted},
    )


def _still_wanted(row: AlertOutbox, incident: Incident, threshold: int | None) -> bool:
    """Whether a pending row is still to be sent; ``threshold`` is the incident's current reminder threshold."""
    kind = (row.payload or {}).get("kind", ALERT)
    if kind == REMINDER:
        return threshold is not None and row.payload.get("threshold_hours") == threshold
    if kind == ESCALATION:
        return incident.status == IncidentStatus.OPEN.value
    return True


def _supersede_stale(
    session: Session, policies: Mapping[str, UseCasePolicy | None], now: datetime, report: FollowupReport
) -> None:
    """Mark pending reminders and escalations that are no longer true as superseded, so that they are never sent."""
    rows = session.execute(
        select(AlertOutbox, Incident)
        .join(Incident, AlertOutbox.incident_id == Incident.id)
        .where(AlertOutbox.status == "pending")
        .order_by(AlertOutbox.id)
    )
    for row, incident in rows:
        if (row.payload or {}).get("kind", ALERT) == ALERT:
            continue
        policy = policies.get(incident.use_case)
        if policy is None and incident.status != IncidentStatus.RESOLVED.value:
            continue
        threshold = due_reminder_threshold(incident, policy, now) if policy is not None else None
        if _still_wanted(row, incident, threshold):
            continue
        still_pending = (AlertOutbox.id == row.id) & (AlertOutbox.status == "pending")
        result = cast(
            "CursorResult[Any]", session.execute(update(AlertOutbox).where(still_pending).values(status=SUPERSEDED))
        )
        if not result.rowcount:
            continue  # a concurrent pass superseded it, or a relay recorded its delivery, since it was read
        report.superseded += 1
        session.refresh(row)  # the Core update left the loaded row stale: its event digests the row as stored
        outbox_event(
            session,
            row,
            actor=ACTOR,
            action="alert.superseded",
            payload={"outbox_id": row.id, "kind": row.payload.get("kind"), "incident_status": incident.status},
        )


def _policy_of(
    use_case: str, incident_id: int, policies: dict[str, UseCasePolicy | None], report: FollowupReport
) -> UseCasePolicy | None:
    if use_case not in policies:
        try:
            policies[use_case] = load_policy(use_case)
        except CharterError as exc:
            policies[use_case] = None
            report.skipped_use_cases.append(use_case)
            log.warning(
                "incident #%s: the policy of use case %r cannot be loaded, its reminders and escalations are "
                "skipped until the policy file is fixed (check it with `charter policy validate`): %s",
                incident_id,
                use_case,
                exc,
            )
    return policies[use_case]


def queue_followups(
    session: Session, *, now: datetime, policies: Mapping[str, UseCasePolicy] | None = None
) -> FollowupReport:
    """Queue every reminder and escalation due at ``now`` in the caller's transaction; supersede stale ones.

    :param session: a ledger session; the caller commits.
    :param now: the current time, timezone-aware UTC (tests pass a simulated clock).
    :param policies: policies by use-case id; a use case not in it is loaded from the policies folder.
        An incident whose policy cannot be loaded is skipped with a warning naming it.
    """
    report = FollowupReport()
    known: dict[str, UseCasePolicy | None] = dict(policies or {})
    open_incidents = session.scalars(
        select(Incident).where(Incident.status != IncidentStatus.RESOLVED.value).order_by(Incident.id)
    ).all()
    for incident in open_incidents:
        policy = _policy_of(incident.use_case, incident.id, known, report)
        if policy is None:
            continue
        for followup in due_followups(incident, policy, now):
            _queue(session, incident, followup, now, report)
    _supersede_stale(session, known, now, report)
    return report


def queue_due_followups(
    *, now: datetime, policies: Mapping[str, UseCasePolicy] | None = None, url: str | None = None
) -> FollowupReport:
    """:func:`queue_followups` in its own ledger transaction (committed on return)."""
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session(url) as session:
        return queue_followups(session, now=now, policies=policies)


def queue_due_followups_safely(*, now: datetime, url: str | None = None) -> FollowupReport:
    """:func:`queue_due_followups`, never raising: the relay runs it before delivering, and the alerts
    already due must go out even when follow-ups cannot be queued. The report's ``error`` says so; the
    caller fails after delivering, so that the failure is seen and the next run tries again."""
    try:
        return queue_due_followups(now=now, url=url)
    except Exception as exc:
        log.exception("reminders and escalations could not be queued")
        return FollowupReport(error=f"{type(exc).__name__}: reminders and escalations not queued (see the log)")


__all__ = [
    "ALERT",
    "ESCALATION",
    "REMINDER",
    "SUPERSEDED",
    "Followup",
    "FollowupReport",
    "due_followups",
    "due_reminder_threshold",
    "followup_key",
    "queue_due_followups",
    "queue_due_followups_safely",
    "queue_followups",
    "reminder_recipients",
]
