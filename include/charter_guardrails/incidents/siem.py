"""Incidents and their state changes as Elastic Common Schema (ECS 8.x) events, for a SIEM.

The signed audit chain is the source of truth: every ``incident.*`` event of the chain whose subject is
an incident (``incident.raised``, ``incident.acknowledged``, ``incident.resolved``, the notification
decisions ``incident.art33_decision`` and ``incident.art34_decision``, and any later ``incident.*``
action) becomes one flat dict whose keys are ECS field names. :func:`incident_events` reads them in
chain order (the export command); :func:`queue_siem_events` queues one for each ``syslog`` destination
of the policy when an incident changes, so that the relay delivers it at least once.

The mapping, field → source:

=============================  ===================================================================
``@timestamp``                 the audit event's time (when the change was recorded)
``ecs.version``                :data:`ECS_VERSION`
``message``                    ``Incident #<id> <action>: <title>``
``event.kind``                 ``alert`` for ``incident.raised``, ``event`` for every later change
``event.category``             ``["intrusion_detection"]``: a guardrail detected a breach
``event.type``                 ``["start"]`` raised, ``["end"]`` resolved, ``["info"]`` otherwise
``event.action``               the audit action (``incident.acknowledged``…)
``event.id``                   ``charter-audit-<seq>-<first 16 hex of the event's hash>``: stable,
                               the SIEM's idempotency key (:func:`audit_event_id`)
``event.sequence``             the audit event's sequence number
``event.hash``                 the audit event's chained SHA-256
``event.severity``             the incident's severity on 1 (info) … 5 (critical), :data:`SEVERITY_SCALE`
``event.created``              the audit event's time
``event.start`` / ``event.end``  the incident's detection time / its resolution time once resolved
``event.module``, ``event.dataset``  ``charter_guardrails``, ``charter_guardrails.incident``
``event.url``, ``url.full``    the incident's page in the governance view (``CHARTER_UI_BASE_URL``)
``rule.name``                  the incident's title
``rule.category``              the breach type (``integrity``, ``confidentiality``…)
``rule.ruleset``               ``charter-guardrails``
``observer.product/vendor/version``  this library
``labels.*``                   ``incident_id``, ``incident_key``, ``use_case``, ``dataset``, ``run_id``,
                               ``breach_type``, ``severity``, ``status`` (after a raise, an
                               acknowledgement or a resolution), ``detected_at``, ``notify_deadline``
                               (GDPR Art. 33(1)), ``approx_records``, ``approx_data_subjects`` (counts),
                               ``data_subject_categories``, ``personal_data_categories`` (comma-separated
                               category names); for a decision ``incident.artNN_decision``,
                               ``artNN_decision``, ``artNN_previous``, ``artNN_ground``,
                               ``artNN_notified_on``, ``artNN_communicated_on`` (:data:`DECISION_FIELDS`)
=============================  ===================================================================

ECS ``labels`` are keyword strings, so every label value is a string.

**No personal value leaves**: an event carries titles, categories, counts, times and identifiers; never
the free-text comments of a change, its actor, the DPO contact, the nature or the facts. From an audit
event's payload only the fields of :data:`DECISION_FIELDS` are taken, and only when their value is a
lower-case code word (``to_notify``, ``not_required``, the Art. 34(3) ground ``a``…) or a day
(``YYYY-MM-DD``): the authority, its reference, the channel and the rationale, written by people, stay out.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from charter_guardrails import __version__
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.settings import get_settings
from charter_guardrails.ledger.audit_rows import outbox_event
from charter_guardrails.ledger.models import AlertOutbox, AuditEvent, Incident

_log = logging.getLogger(__name__)

#: The ECS version whose field names these events use.
ECS_VERSION = "8.11.0"
PRODUCT = "charter-guardrails"
#: The channel of the outbox rows bound for a SIEM.
SYSLOG_CHANNEL = "syslog"

#: The incident's severity word on an ascending numeric scale (``event.severity``).
SEVERITY_SCALE: dict[str, int] = {
    "info": 1,
    "low": 2,
    "warning": 2,
    "medium": 3,
    "error": 4,
    "high": 4,
    "critical": 5,
}
#: The severity of an incident whose severity word is not on the scale.
DEFAULT_SEVERITY = 3

#: ``event.kind`` and ``event.type`` by action; any other ``incident.*`` action is ``("event", ["info"])``.
_CATEGORISATION: dict[str, tuple[str, list[str]]] = {
    "incident.raised": ("alert", ["start"]),
    "incident.resolved": ("event", ["end"]),
}

#: The incident's status after each state change.
_STATUS_AFTER = {"incident.raised": "open", "incident.acknowledged": "acknowledged", "incident.resolved": "resolved"}

#: Payload fields of a decision's audit event copied to ``labels`` (code words and days, never free text).
DECISION_FIELDS = ("decision", "previous", "ground", "notified_on", "communicated_on")

#: A payload value that may leave: a lower-case code word starting with a letter, or a day.
_SAFE_VALUE = re.compile(r"[a-z][a-z0-9_]{0,31}|\d{4}-\d{2}-\d{2}")

#: The path of an incident's page under the UI's base address (the governance view's prefix).
INCIDENT_PAGE = "/charte/incidents/{incident_id}"


def audit_event_id(seq: int, chain_hash: str) -> str:
    """The ECS ``event.id`` of the audit event ``seq``: the same on every export and every retry."""
    return f"charter-audit-{seq}-{chain_hash[:16]}"


def incident_url(incident_id: int, base_url: str | None = None) -> str:
    """The incident's page in the governance view (``CHARTER_UI_BASE_URL`` unless ``base_url`` is given)."""
    base = (base_url if base_url is not None else get_settings().ui_base_url).rstrip("/")
    return base + INCIDENT_PAGE.format(incident_id=incident_id)


def _iso(value: datetime) -> str:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _decision_labels(action: str, payload: dict[str, Any] | None) -> dict[str, str]:
    """``incident.art33_decision`` → ``art33_decision``, ``art33_previous``… from the payload's safe values."""
    if not action.endswith("_decision") or not payload:
        return {}
    topic = action.removeprefix("incident.").removesuffix("_decision")
    return {
        f"{topic}_{name}": value
        for name in DECISION_FIELDS
        if isinstance(value := payload.get(name), str) and _SAFE_VALUE.fullmatch(value)
    }


def _labels(incident: Incident, action: str, payload: dict[str, Any] | None) -> dict[str, str]:
    values: dict[str, Any] = {
        "incident_id": incident.id,
        "incident_key": incident.key,
        "use_case": incident.use_case,
        "dataset": incident.dataset,
        "run_id": incident.run_id,
        "breach_type": incident.breach_type,
        "severity": incident.severity,
        "status": _STATUS_AFTER.get(action),
        "detected_at": _iso(incident.detected_at),
        "notify_deadline": _iso(incident.notify_deadline),
        "approx_records": incident.approx_records,
        "approx_data_subjects": incident.approx_data_subjects,
        "data_subject_categories": ",".join(str(c) for c in incident.data_subject_categories or []) or None,
        "personal_data_categories": ",".join(str(c) for c in incident.personal_data_categories or []) or None,
    }
    labels = {f"labels.{name}": str(value) for name, value in values.items() if value is not None}
    for name, value in _decision_labels(action, payload).items():
        labels.setdefault(f"labels.{name}", value)
    return labels


def ecs_event(
    incident: Incident,
    action: str,
    *,
    at: datetime,
    event_id: str,
    sequence: int | None = None,
    chain_hash: str | None = None,
    payload: dict[str, Any] | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """One state change of ``incident`` as a flat ECS dict (see the module's mapping).

    :param action: the audit action (``incident.raised``…).
    :param at: when the change was recorded.
    :param event_id: the ``event.id``; :func:`audit_event_id` for an event of the chain.
    :param sequence: the audit event's sequence number, if the change is in the chain.
    :param chain_hash: the audit event's hash, if the change is in the chain.
    :param payload: the audit event's payload; only the safe values of :data:`DECISION_FIELDS` are read.
    :param base_url: the UI's base address (default: ``CHARTER_UI_BASE_URL``).
    """
    kind, types = _CATEGORISATION.get(action, ("event", ["info"]))
    url = incident_url(incident.id, base_url)
    event: dict[str, Any] = {
        "@timestamp": _iso(at),
        "ecs.version": ECS_VERSION,
        "message": f"Incident #{incident.id} {action}: {incident.title}",
        "event.kind": kind,
        "event.category": ["intrusion_detection"],
        "event.type": list(types),
        "event.action": action,
        "event.id": event_id,
        "event.severity": SEVERITY_SCALE.get(incident.severity, DEFAULT_SEVERITY),
        "event.created": _iso(at),
        "event.start": _iso(incident.detected_at),
        "event.module": "charter_guardrails",
        "event.dataset": "charter_guardrails.incident",
        "event.url": url,
        "url.full": url,
        "rule.name": incident.title,
        "rule.category": incident.breach_type,
        "rule.ruleset": PRODUCT,
        "observer.product": PRODUCT,
        "observer.vendor": PRODUCT,
        "observer.version": __version__,
    }
    if sequence is not None:
        event["event.sequence"] = sequence
    if chain_hash is not None:
        event["event.hash"] = chain_hash
    if action == "incident.resolved" and incident.resolved_at is not None:
        event["event.end"] = _iso(incident.resolved_at)
    event.update(_labels(incident, action, payload))
    return event


def _from_audit(ev: AuditEvent, incident: Incident, base_url: str | None) -> dict[str, Any]:
    return ecs_event(
        incident,
        ev.action,
        at=ev.ts,
        event_id=audit_event_id(int(ev.seq), ev.hash),
        sequence=int(ev.seq),
        chain_hash=ev.hash,
        payload=ev.payload if isinstance(ev.payload, dict) else None,
        base_url=base_url,
    )


def incident_events(
    session: Session,
    since: datetime | None = None,
    after_seq: int | None = None,
    *,
    until: datetime | None = None,
    base_url: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every ``incident.*`` event of the audit chain about an incident, as ECS dicts, in chain order.

    :param since: only events recorded at or after this time (timezone-aware).
    :param after_seq: only events after this sequence number (to resume where a previous export stopped).
    :param until: only events recorded before this time (timezone-aware).
    :param base_url: the UI's base address for ``event.url`` (default: ``CHARTER_UI_BASE_URL``).
    """
    query = (
        select(AuditEvent, Incident)
        .join(Incident, AuditEvent.subject_id == cast(Incident.id, String))
        .where(AuditEvent.subject_type == Incident.__tablename__, AuditEvent.action.startswith("incident."))
        .order_by(AuditEvent.seq)
    )
    if since is not None:
        query = query.where(AuditEvent.ts >= since)
    if until is not None:
        query = query.where(AuditEvent.ts < until)
    if after_seq is not None:
        query = query.where(AuditEvent.seq > after_seq)
    for ev, incident in session.execute(query.execution_options(yield_per=500)).tuples():
        yield _from_audit(ev, incident, base_url)


def siem_idempotency_key(incident_key: str, action: str, conn_id: str) -> str:
    """The idempotency key of one state change for one SIEM destination."""
    return hashlib.sha256(f"{incident_key}|{action}|{SYSLOG_CHANNEL}|{conn_id}".encode()).hexdigest()[:40]


def _latest_audit_event(session: Session, incident: Incident, action: str) -> AuditEvent | None:
    query = (
        select(AuditEvent)
        .where(
            AuditEvent.subject_type == Incident.__tablename__,
            AuditEvent.subject_id == str(incident.id),
            AuditEvent.action == action,
        )
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def current_event(session: Session, incident: Incident, action: str, *, base_url: str | None = None) -> dict[str, Any]:
    """The ECS event of the latest ``action`` on ``incident``.

    From its audit event when the chain already holds it (then ``event.id`` is the one
    :func:`incident_events` exports); otherwise from the incident alone, at the current time, with an
    ``event.id`` derived from the incident's key and the action.
    """
    session.flush()
    ev = _latest_audit_event(session, incident, action)
    if ev is not None:
        return _from_audit(ev, incident, base_url)
    digest = hashlib.sha256(f"{incident.key}|{action}".encode()).hexdigest()[:16]
    return ecs_event(incident, action, at=datetime.now(UTC), event_id=f"charter-incident-{digest}", base_url=base_url)


def queue_siem_events(session: Session, incident: Incident, action: str, policy: UseCasePolicy) -> list[AlertOutbox]:
    """Queue the ECS event of ``action`` on ``incident`` for every ``syslog`` destination of ``policy``.

    One pending ``syslog`` outbox row per destination, in the caller's transaction; the relay delivers it
    at least once and retries it through a SIEM outage. Call it after the action's audit event is
    appended, so that the event carries the chain's ``event.id``. A destination that already has this
    action of this incident queued is left as it is. Returns the rows added.
    """
    destinations = [d.conn_id for d in policy.incidents.destinations if d.kind.value == SYSLOG_CHANNEL]
    if not destinations:
        return []
    event = current_event(session, incident, action)
    now = datetime.now(UTC)
    added = []
    for conn_id in dict.fromkeys(destinations):
        key = siem_idempotency_key(incident.key, action, conn_id)
        if session.scalars(select(AlertOutbox.id).where(AlertOutbox.idempotency_key == key)).first() is not None:
            continue
        row = AlertOutbox(
            incident_id=incident.id,
            channel=SYSLOG_CHANNEL,
            recipient=conn_id,
            idempotency_key=key,
            payload=event,
            status="pending",
            attempts=0,
            next_attempt_at=now,
        )
        session.add(row)
        added.append(row)
    session.flush()
    for row in added:
        outbox_event(session, row, actor="charter-guardrails", action="alert.queued", payload={"siem_action": action})
    return added


def queue_siem_events_for(session: Session, incident: Incident, action: str) -> list[AlertOutbox]:
    """:func:`queue_siem_events` with the policy of the incident's use case.

    A state change must not fail because the policy file is broken or gone: the SIEM rows are then not
    queued, with a warning naming the use case (the event stays in the audit chain and in
    ``charter incidents export``).
    """
    from charter_guardrails.core.errors import CharterError
    from charter_guardrails.core.policy import load_policy

    try:
        policy = load_policy(incident.use_case)
    except CharterError as exc:
        _log.warning("incident %s: no SIEM event queued for %s: %s", incident.id, action, exc)
        return []
    return queue_siem_events(session, incident, action, policy)


__all__ = [
    "DECISION_FIELDS",
    "ECS_VERSION",
    "SEVERITY_SCALE",
    "SYSLOG_CHANNEL",
    "audit_event_id",
    "current_event",
    "ecs_event",
    "incident_events",
    "incident_url",
    "queue_siem_events",
    "queue_siem_events_for",
    "siem_idempotency_key",
]
