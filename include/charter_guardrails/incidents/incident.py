"""Security and GDPR incidents.

"Toute corruption de données doit faire l'objet d'un incident de sécurité" (Sûreté 2).
An incident is a row before it is a message: :func:`raise_incident` writes the incident, its
alert outbox rows and its audit event in the caller's transaction. A relay
(``charter alerts relay``) then delivers the outbox at least once.

Incidents are unique per idempotency key (kind, dataset, Airflow run): re-running the same
task returns the existing incident instead of creating a second one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.incidents.siem import queue_siem_events, queue_siem_events_for
from charter_guardrails.incidents.targets import alert_targets
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.audit_rows import outbox_event
from charter_guardrails.ledger.models import AlertOutbox, Incident

#: GDPR Art. 33(1): notify the supervisory authority within 72 hours.
NOTIFY_WITHIN = timedelta(hours=72)


class BreachType(StrEnum):
    INTEGRITY = "integrity"
    CONFIDENTIALITY = "confidentiality"
    AVAILABILITY = "availability"
    GDPR_COMPLIANCE = "gdpr_compliance"


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class IncidentDraft:
    """What a guardrail knows about an incident; the policy fills in the GDPR context."""

    breach_type: BreachType
    severity: str
    dataset: str | None
    run_id: str | None
    title: str
    nature: str
    facts: dict[str, Any]
    likely_consequences: str
    measures_taken: list[str]
    approx_records: int | None = None


def incident_key(breach_type: BreachType | str, use_case: str, dataset: str | None, run_id: str | None) -> str:
    return f"{BreachType(breach_type).value}:{use_case}:{dataset or '-'}:{run_id or '-'}"


def raise_incident(
    session: Session, policy: UseCasePolicy, draft: IncidentDraft, *, actor: str = "charter-guardrails"
) -> tuple[Incident, bool]:
    """Create the incident, its outbox rows and its audit event; return (incident, created)."""
    key = incident_key(draft.breach_type, policy.id, draft.dataset, draft.run_id)
    existing = session.scalars(select(Incident).where(Incident.key == key)).first()
    if existing is not None:
        return existing, False
    incident = _new_incident(policy, draft, key, detected_at=datetime.now(UTC))
    try:
        with session.begin_nested():
            session.add(incident)
            session.flush()
    except IntegrityError:
        return session.scalars(select(Incident).where(Incident.key == key)).one(), False
    _queue_alerts(session, policy, incident, actor=actor)
    append_event(
        session,
        actor=actor,
        action="incident.raised",
        subject=incident,
        use_case=policy.id,
        run_id=draft.run_id,
        payload={"breach_type": incident.breach_type, "dataset": draft.dataset},
    )
    queue_siem_events(session, incident, "incident.raised", policy)
    return incident, True


def _new_incident(policy: UseCasePolicy, draft: IncidentDraft, key: str, *, detected_at: datetime) -> Incident:
    """The incident row: the draft, with the GDPR Art. 33 context the policy declares for its dataset."""
    dataset = (
        policy.dataset(draft.dataset) if draft.dataset and draft.dataset in {d.id for d in policy.datasets} else None
    )
    return Incident(
        key=key,
        breach_type=BreachType(draft.breach_type).value,
        severity=draft.severity,
        use_case=policy.id,
        dataset=draft.dataset,
        run_id=draft.run_id,
        title=draft.title,
        nature=draft.nature,
        facts=draft.facts,
        data_subject_categories=list(dataset.data_subjects) if dataset else [],
        approx_data_subjects=draft.approx_records if dataset and dataset.personal_data else None,
        personal_data_categories=sorted(
            {c.personal_data.value for c in dataset.columns if c.personal_data.value != "none"}
        )
        if dataset
        else [],
        approx_records=draft.approx_records,
        likely_consequences=draft.likely_consequences,
        measures_taken=list(draft.measures_taken),
        dpo_contact=f"{policy.dpo.name} <{policy.dpo.email}>",
        detected_at=detected_at,
        notify_deadline=detected_at + NOTIFY_WITHIN,
        status=IncidentStatus.OPEN.value,
        comments=[],
    )


def _queue_alerts(session: Session, policy: UseCasePolicy, incident: Incident, *, actor: str) -> None:
    """One pending outbox row per alert target, due now, each with its audit event; the relay delivers them."""
    rows = []
    for channel, recipient in alert_targets(policy):
        rows.append(
            AlertOutbox(
                incident_id=incident.id,
                channel=channel,
                recipient=recipient,
                idempotency_key=hashlib.sha256(f"{incident.key}|{channel}|{recipient}".encode()).hexdigest()[:40],
                payload=incident_payload(incident),
                status="pending",
                attempts=0,
                next_attempt_at=incident.detected_at,
            )
        )
    session.add_all(rows)
    for row in rows:
        outbox_event(session, row, actor=actor, action="alert.queued")


def incident_payload(incident: Incident) -> dict[str, Any]:
    """What an alert carries: the Art. 33 fields, never a raw personal value."""
    return {
        "incident_id": incident.id,
        "key": incident.key,
        "breach_type": incident.breach_type,
        "severity": incident.severity,
        "use_case": incident.use_case,
        "dataset": incident.dataset,
        "run_id": incident.run_id,
        "title": incident.title,
        "nature": incident.nature,
        "facts": incident.facts,
        "data_subject_categories": incident.data_subject_categories,
        "approx_records": incident.approx_records,
        "likely_consequences": incident.likely_consequences,
        "measures_taken": incident.measures_taken,
        "dpo_contact": incident.dpo_contact,
        "detected_at": incident.detected_at.isoformat(),
        "notify_deadline": incident.notify_deadline.isoformat(),
    }


_TRANSITIONS = {
    IncidentStatus.ACKNOWLEDGED: {IncidentStatus.OPEN},
    IncidentStatus.RESOLVED: {IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED},
}


def transition_incident(
    session: Session, incident_id: int, to: IncidentStatus, *, actor: str, comment: str | None = None
) -> Incident:
    """Acknowledge or resolve an incident, recorded with who, when and why in the audit chain.

    :raises IncidentDecisionRequired: when resolving an incident whose GDPR Art. 33 decision is open
        (:func:`~charter_guardrails.incidents.decisions.art33_open`).
    """
    from charter_guardrails.incidents.decisions import require_art33_decision

    incident = session.get(Incident, incident_id)
    if incident is None:
        raise ConfigError(f"no incident #{incident_id}; list them with `charter incidents list`")
    current = IncidentStatus(incident.status)
    if current not in _TRANSITIONS[to]:
        raise ConfigError(f"incident #{incident_id} is {current.value}; it cannot become {to.value}")
    if to is IncidentStatus.RESOLVED:
        require_art33_decision(incident)
    now = datetime.now(UTC)
    if to is IncidentStatus.ACKNOWLEDGED:
        incident.acknowledged_by, incident.acknowledged_at = actor, now
    else:
        incident.resolved_by, incident.resolved_at = actor, now
    incident.status = to.value
    if comment:
        incident.comments = [
            *incident.comments,
            {"at": now.isoformat(), "by": actor, "status": to.value, "comment": comment},
        ]
    append_event(
        session,
        actor=actor,
        action=f"incident.{to.value}",
        subject=incident,
        use_case=incident.use_case,
        run_id=incident.run_id,
        payload={"comment": comment},
    )
    queue_siem_events_for(session, incident, f"incident.{to.value}")
    return incident
