"""The ``incidents`` section of a use-case policy: who follows an incident up, and where its alerts go.

Part of the policy schema (:class:`~charter_guardrails.core.policy.UseCasePolicy` assembles it); kept
apart from :mod:`charter_guardrails.core.policy_models`, which holds the sections about data and models.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator

from charter_guardrails.core.policy_models import Contact, PolicySection


class DestinationKind(StrEnum):
    """Where incident alerts go besides e-mail."""

    #: an HTTP endpoint, signed as the Standard Webhooks specification says
    WEBHOOK = "webhook"
    #: Tchap, or any Matrix room
    MATRIX = "matrix"
    TEAMS = "teams"
    MATTERMOST = "mattermost"
    #: a SIEM, as RFC 5424 syslog messages
    SYSLOG = "syslog"


class AlertDestination(PolicySection):
    """One destination of the incident alerts: its kind and the Airflow connection that holds its address
    and secret. Outbox rows name the connection, never the address or the secret."""

    kind: DestinationKind
    conn_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,250}$")


class IncidentPolicy(PolicySection):
    """How incidents are followed up: who is reminded and escalated to, and where alerts go."""

    #: The security officer who decides on notification (GDPR Art. 33); reminders go to them and the DPO.
    #: When unset, the policy's ``alert_recipients`` are reminded.
    security_officer: Contact | None = None
    #: An incident not acknowledged within this many hours is escalated to the next contact of ``escalation``.
    ack_within_hours: float = Field(default=4.0, gt=0, le=72)
    #: Who is told, in order, when nobody acknowledges in time.
    escalation: list[Contact] = Field(default_factory=list)
    #: Reminders while the Art. 33 decision is open, in hours before the 72-hour deadline.
    reminder_hours_before_deadline: list[int] = Field(default_factory=lambda: [48, 24, 6])
    #: Destinations besides e-mail: signed webhooks, chat rooms, a SIEM.
    destinations: list[AlertDestination] = Field(default_factory=list)

    @field_validator("reminder_hours_before_deadline")
    @classmethod
    def _reminders_within_the_deadline(cls, value: list[int]) -> list[int]:
        if any(h <= 0 or h >= 72 for h in value) or len(set(value)) != len(value):
            raise ValueError("reminders are distinct hours between 1 and 71 before the 72-hour deadline")
        return sorted(value, reverse=True)
