"""The incident alert relay wired to Airflow: e-mail through an Airflow SMTP connection when it exists.

The library's relay (``charter_guardrails.incidents.relay``) delivers the alert outbox with retries and
idempotency, after :mod:`charter_guardrails.incidents.followup` has queued the due reminders and
escalations; here it gets Airflow's SMTP provider as its e-mail sender, and a task for the
``incident_alert_relay`` DAG.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import task

from charter_airflow.runtime import configure_from_airflow

log = logging.getLogger(__name__)

#: The Airflow SMTP connection used for alert e-mails when it exists.
SMTP_CONN_ID = "smtp_default"


class AirflowSmtpSender:
    """Sends alert e-mails through the SMTP provider's hook and an Airflow connection (``smtp_default``)."""

    def __init__(self, conn_id: str = SMTP_CONN_ID, from_email: str | None = None) -> None:
        self.conn_id = conn_id
        self.from_email = from_email

    def send(self, alert: Any) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook
        from charter_guardrails.core.errors import DeliveryError
        from charter_guardrails.incidents.messages import IDEMPOTENCY_HEADER, html_body, message_id, subject
        from charter_guardrails.incidents.senders import DEFAULT_FROM

        try:
            with SmtpHook(smtp_conn_id=self.conn_id) as hook:
                hook.send_email_smtp(
                    to=alert.recipient,
                    subject=subject(alert),
                    html_content=html_body(alert),
                    from_email=self.from_email or hook.from_email or DEFAULT_FROM,
                    custom_headers={
                        "Message-ID": message_id(alert),
                        IDEMPOTENCY_HEADER: alert.idempotency_key,
                        # an approval notice of a refresh has no incident
                        **({"X-Charter-Incident": str(alert.incident_id)} if alert.incident_id is not None else {}),
                        "Content-Language": "fr",
                    },
                )
        except Exception as exc:  # noqa: BLE001 - any failure is one failed attempt; never echo credentials
            raise DeliveryError(f"SMTP via Airflow connection {self.conn_id}: {type(exc).__name__}") from None


def airflow_connection_exists(conn_id: str) -> bool:
    try:
        from airflow.sdk import BaseHook

        BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - "not found" has several exception types across Airflow versions
        return False
    return True


def alert_senders(conn_id: str = SMTP_CONN_ID) -> dict[str, Any]:
    """E-mail through the Airflow SMTP provider when ``conn_id`` exists, else ``CHARTER_SMTP_*``; webhooks and chat
    rooms at the Airflow connections their outbox rows name."""
    from charter_guardrails.incidents.senders import default_senders

    from charter_airflow.connections import airflow_connection

    senders: dict[str, Any] = dict(default_senders(airflow_connection))
    if airflow_connection_exists(conn_id):
        senders["email"] = AirflowSmtpSender(conn_id)
    return senders


@task(task_id="relay_alert_outbox", multiple_outputs=False)
def relay_alert_outbox(*, smtp_conn_id: str = SMTP_CONN_ID) -> dict[str, Any]:
    """Queue due reminders and escalations, then deliver every due outbox alert.

    Failed attempts are rescheduled with backoff in the outbox itself.

    :param smtp_conn_id: the Airflow SMTP connection to use when it exists.
    """
    from charter_guardrails.incidents.followup import queue_due_followups_safely
    from charter_guardrails.incidents.relay import relay, utcnow

    configure_from_airflow()
    followups = queue_due_followups_safely(now=utcnow())
    report = relay(alert_senders(smtp_conn_id))
    report.queued = followups.queued
    log.info(
        "alert relay: %s queued (%s reminders, %s escalations), %s due, %s delivered, %s failed, %s dead, "
        "unsent channels %s",
        report.queued,
        followups.reminders,
        followups.escalations,
        report.claimed,
        report.delivered,
        report.failed,
        report.dead,
        report.unsent_channels,
    )
    if followups.error:
        # The due alerts went out; fail the run so that the broken follow-ups are seen and retried.
        raise RuntimeError(followups.error)
    return {**report.to_json_dict(), "followups": followups.to_json_dict()}
