"""The outbox relay: deliver every incident alert at least once.

Incidents and their ``alert_outbox`` rows are committed together (see ``incidents.py``). The
relay then works in three short steps, so that no database lock is held during a network call:

1. **claim** due rows (``pending`` and ``next_attempt_at <= now``) and push their
   ``next_attempt_at`` forward by a lease. On PostgreSQL the claim uses
   ``SELECT … FOR UPDATE SKIP LOCKED``, so two relays never claim the same row; on SQLite the
   claim transaction takes the write lock at ``BEGIN`` (``BEGIN IMMEDIATE``), which serialises it;
2. **send** each claimed alert (e-mail, webhook) with its idempotency key;
3. **record** the attempt: ``delivered`` with ``delivered_at``, or ``last_error`` and the next
   attempt after an exponential backoff; ``dead`` after ``max_attempts``.

A relay that dies between 2 and 3 leaves the row claimed; the lease expires and the alert is
sent again with the same idempotency key (at least once, at most one duplicate per crash).
The clock is a parameter, so tests can simulate hours of outage in milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from charter_guardrails.core.errors import ConfigError, DeliveryError
from charter_guardrails.incidents.messages import Alert
from charter_guardrails.incidents.senders import Sender

log = logging.getLogger(__name__)
ACTOR = "charter-alert-relay"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backoff:
    """``base × factor^(attempts−1)``, capped at ``max_delay``; ``dead`` after ``max_attempts`` (≈ a day by default)."""

    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    max_delay: timedelta = timedelta(minutes=30)
    max_attempts: int = 60

    def delay(self, attempts: int) -> timedelta:
        seconds = self.base.total_seconds() * self.factor ** max(attempts - 1, 0)
        return min(timedelta(seconds=seconds), self.max_delay)


#: How long a claimed row is hidden from other relays while it is being sent.
DEFAULT_LEASE = timedelta(minutes=5)


@dataclass
class RelayReport:
    #: Reminder and escalation rows queued before this pass (:mod:`charter_guardrails.incidents.followup`).
    queued: int = 0
    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    #: Channels of due rows that no sender handles (e.g. e-mail without SMTP settings): left pending.
    unsent_channels: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: RelayReport) -> None:
        self.queued += other.queued
        self.claimed += other.claimed
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead += other.dead
        for channel, count in other.unsent_channels.items():
            self.unsent_channels[channel] = max(self.unsent_channels.get(channel, 0), count)
        self.errors.extend(other.errors)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "claimed": self.claimed,
            "delivered": self.delivered,
            "failed": self.failed,
            "dead": self.dead,
            "unsent_channels": self.unsent_channels,
            "errors": self.errors[:50],
        }


def _claim(
    url: str | None, now: datetime, channels: set[str], batch_size: int, lease: timedelta, report: RelayReport
) -> list[Alert]:
    from sqlalchemy import func, select

    from charter_guardrails.ledger.models import AlertOutbox
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session(url) as session:
        due = (AlertOutbox.status == "pending") & (AlertOutbox.next_attempt_at <= now)
        query = (
            select(AlertOutbox)
            .where(due, AlertOutbox.channel.in_(sorted(channels)))
            .order_by(AlertOutbox.next_attempt_at, AlertOutbox.id)
        )
        query = query.limit(batch_size)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        alerts = []
        for row in session.scalars(query):
            row.next_attempt_at = now + lease
            alerts.append(
                Alert(
                    row.id,
                    row.incident_id,
                    row.channel,
                    row.recipient,
                    row.idempotency_key,
                    dict(row.payload),
                    row.attempts + 1,
                )
            )
        for channel, count in session.execute(
            select(AlertOutbox.channel, func.count())
            .where(due, AlertOutbox.channel.not_in(sorted(channels)))
            .group_by(AlertOutbox.channel)
        ):
            report.unsent_channels[channel] = int(count)
    return alerts


def _record(
    url: str | None, alert: Alert, error: str | None, now: datetime, backoff: Backoff, report: RelayReport
) -> None:
    from charter_guardrails.ledger.audit import append_event
    from charter_guardrails.ledger.models import AlertOutbox
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session(url) as session:
        row = session.get(AlertOutbox, alert.outbox_id)
        if row is None or row.status != "pending":
            return
        row.attempts = (row.attempts or 0) + 1
        # Alert payloads carry the use case and run at the top; SIEM events under their ECS labels.
        use_case = alert.payload.get("use_case") or alert.payload.get("labels.use_case")
        run_id = alert.payload.get("run_id") or alert.payload.get("labels.run_id")
        audit = {
            "incident_id": alert.incident_id,
            "outbox_id": alert.outbox_id,
            "channel": alert.channel,
            "idempotency_key": alert.idempotency_key,
            "attempts": row.attempts,
        }
        if error is None:
            row.status, row.delivered_at, row.last_error = "delivered", now, None
            report.delivered += 1
            append_event(
                session,
                actor=ACTOR,
                action="alert.delivered",
                subject=row,
                use_case=use_case,
                run_id=run_id,
                payload=audit,
            )
            return
        row.last_error = error[:1000]
        report.failed += 1
        report.errors.append(
            {"outbox_id": alert.outbox_id, "channel": alert.channel, "attempts": row.attempts, "error": row.last_error}
        )
        if row.attempts >= backoff.max_attempts:
            row.status = "dead"
            report.dead += 1
            append_event(
                session,
                actor=ACTOR,
                action="alert.dead",
                subject=row,
                use_case=use_case,
                run_id=run_id,
                payload={**audit, "last_error": row.last_error},
            )
        else:
            row.next_attempt_at = now + backoff.delay(row.attempts)


def relay_once(
    senders: dict[str, Sender],
    *,
    clock: Callable[[], datetime] = utcnow,
    backoff: Backoff | None = None,
    batch_size: int = 100,
    lease: timedelta = DEFAULT_LEASE,
    url: str | None = None,
) -> RelayReport:
    """Claim one batch of due alerts, send them and record every attempt.

    :param senders: a sender per channel (``email``, ``webhook``); rows of other channels stay pending.
    :param clock: the current time (timezone-aware UTC); tests pass a simulated clock.
    :param backoff: retry schedule.
    :param batch_size: most rows claimed in one pass.
    :param lease: how long a claimed row is hidden from other relays.
    :param url: the ledger URL (default: the settings).
    """
    backoff = backoff or Backoff()
    report = RelayReport()
    alerts = _claim(url, clock(), set(senders), batch_size, lease, report)
    report.claimed = len(alerts)
    for alert in alerts:
        error: str | None = None
        try:
            senders[alert.channel].send(alert)
        except (DeliveryError, ConfigError) as exc:
            # A destination that is down, or a connection to define: the message says which, never a secret.
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one broken sender must not stop the others; the row is retried
            error = f"{type(exc).__name__} in the {alert.channel} sender"
        if error:
            log.warning(
                "alert %s (incident %s, %s) attempt %s failed: %s",
                alert.outbox_id,
                alert.incident_id,
                alert.channel,
                alert.attempt,
                error,
            )
        _record(url, alert, error, clock(), backoff, report)
    return report


def relay(
    senders: dict[str, Sender],
    *,
    clock: Callable[[], datetime] = utcnow,
    backoff: Backoff | None = None,
    batch_size: int = 100,
    url: str | None = None,
    max_batches: int = 100,
) -> RelayReport:
    """Drain every alert due now, batch after batch (each row at most once per call)."""
    total = RelayReport()
    for _ in range(max_batches):
        report = relay_once(senders, clock=clock, backoff=backoff, batch_size=batch_size, url=url)
        total.add(report)
        if report.claimed < batch_size:
            break
    return total


def outbox_status(url: str | None = None) -> dict[str, int]:
    """Count of outbox rows by status."""
    from sqlalchemy import func, select

    from charter_guardrails.ledger.models import AlertOutbox
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session(url) as session:
        return {
            status: int(n)
            for status, n in session.execute(select(AlertOutbox.status, func.count()).group_by(AlertOutbox.status))
        }
