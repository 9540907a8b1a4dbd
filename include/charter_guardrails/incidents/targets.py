"""Who an incident alert goes to: one outbox row per target.

A target is ``(channel, recipient)``: ``("email", address)`` for each of the policy's ``alert_recipients``,
then ``(kind, conn_id)`` for each of ``incidents.destinations`` (a signed webhook, a Matrix/Tchap room, a
Teams or Mattermost channel). A destination's recipient is the id of the Airflow connection that holds its
address and secret, so an outbox row never holds a URL or a secret; the sender resolves the connection when
it sends (see :mod:`charter_guardrails.incidents.connections`).

``syslog`` destinations (a SIEM) are not alert targets: they receive an ECS event per incident action,
queued by :func:`charter_guardrails.incidents.siem.queue_siem_events`.
"""

from __future__ import annotations

from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_incidents import DestinationKind


def alert_targets(policy: UseCasePolicy) -> list[tuple[str, str]]:
    """The ``(channel, recipient)`` of every alert of an incident under ``policy``, without duplicates, in order."""
    targets = [("email", str(address)) for address in policy.alert_recipients]
    targets += [
        (destination.kind.value, destination.conn_id)
        for destination in policy.incidents.destinations
        if destination.kind is not DestinationKind.SYSLOG
    ]
    return list(dict.fromkeys(targets))


__all__ = ["alert_targets"]
