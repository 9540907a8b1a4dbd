"""``incident_alert_relay``: every minute, queue the due reminders and escalations of open incidents,
then deliver the incident alert outbox (at least once).

Reminders come before the 72-hour GDPR Art. 33 deadline while the decision is open; an escalation
when an incident is not acknowledged in time. The DAG is active as soon as it is created: an alert
relay that waits for someone to unpause it would deliver nothing.

E-mail goes through the Airflow SMTP provider when the connection ``smtp_default`` exists, else
through ``CHARTER_SMTP_*``; signed webhooks, Matrix, Teams, Mattermost and syslog (SIEM) at the Airflow
connections the policies' ``incidents.destinations`` name. Failed attempts are rescheduled with
exponential backoff in the outbox itself, so the task succeeds while a destination is down and the
next runs retry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG
from charter_airflow.alerts import relay_alert_outbox
from charter_airflow.dag_factory import DEFAULT_ARGS

with DAG(
    dag_id="incident_alert_relay",
    description="Relaie les alertes d'incident (courriel, webhook) avec reprise et idempotence",
    schedule=timedelta(minutes=1),
    is_paused_upon_creation=False,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["charter", "incidents", "monitoring"],
    doc_md=__doc__,
) as dag:
    relay_alert_outbox()
