"""``integrity_monitor``: re-verify every registered dataset against its signed manifest, every hour.

A mismatch fails its mapped task without retry and raises a security incident (Sûreté 2);
the ``incident_alert_relay`` DAG then delivers the alerts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, task
from charter_airflow.dag_factory import DEFAULT_ARGS

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

    @task(task_id="list_registered_datasets")
    def list_registered_datasets() -> list[dict[str, Any]]:
        """Every dataset with an active manifest, as keyword arguments of the mapped integrity task."""
        from charter_airflow import guardrail_tasks

        return guardrail_tasks.list_registered_datasets()

    # One XCom per mapped task: the CheckResult.
    @task(task_id="verify_dataset_integrity", multiple_outputs=False)
    def verify_dataset_integrity(*, use_case: str, dataset: str, path: str | None = None, **context: Any) -> Any:
        """Verify a dataset file against its signed manifest; fail without retry and raise an incident on a mismatch."""
        from charter_airflow import guardrail_tasks

        return guardrail_tasks.verify_registered_dataset(use_case=use_case, dataset=dataset, path=path, context=context)

    verify_dataset_integrity.expand_kwargs(list_registered_datasets())
