"""``integrity_monitor``: re-verify every registered dataset against its signed manifest, every hour.

A mismatch fails its mapped task without retry and raises a security incident (Sûreté 2);
the ``incident_alert_relay`` DAG then delivers the alerts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG
from charter_airflow.factory import DEFAULT_ARGS
from charter_airflow.tasks.integrity import list_registered_datasets, verify_dataset_integrity

with DAG(
    dag_id="integrity_monitor",
    description="Vérifie chaque heure l'intégrité des jeux de données enregistrés (manifestes Merkle signés)",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["charter", "integrity", "monitoring"],
    doc_md=__doc__,
) as dag:
    verify_dataset_integrity.expand_kwargs(list_registered_datasets())
