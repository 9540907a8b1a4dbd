"""``integrity_monitor``: re-verify every registered dataset against its signed manifest, every hour,
and the ledger's audit chain.

A dataset mismatch fails its mapped task without retry and raises a security incident (Sûreté 2);
the ``incident_alert_relay`` DAG then delivers the alerts.

The audit chain is verified every hour from its last signed verification on, and in full by the first
run of each day (UTC), which finds an edit made before that verification too. A broken chain fails the
task without retry.
"""

from __future__ import annotations

import os
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
    # A deployment verifies its datasets and its audit chain from the start, not once someone unpauses it. The
    # local harness (make run, the tests' Airflow processes) runs only the DAGs it unpauses, and says so here.
    is_paused_upon_creation=os.environ.get("CHARTER_INTEGRITY_MONITOR_PAUSED", "false").lower() == "true",
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

    @task(task_id="verify_audit_chain")
    def verify_audit_chain() -> dict[str, Any]:
        """The audit chain: incremental every hour, in full once a day; fail without retry when it is broken."""
        from airflow.sdk.exceptions import AirflowFailException
        from charter_airflow.runtime import configure_from_airflow
        from charter_guardrails.ledger.audit_verify import scheduled_verification

        configure_from_airflow()
        verification = scheduled_verification()
        outcome = verification.summary()
        if not verification.report.ok:
            raise AirflowFailException(outcome["message"])
        return outcome

    verify_audit_chain()
