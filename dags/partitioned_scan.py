"""``partitioned_scan``: a dataset stored as many Parquet files, hashed and scanned one partition per task.

Integrity hashing and the personal data scan run per partition in **mapped tasks**
(``.expand()``), which the CeleryExecutor spreads over the workers; ``combine`` then reduces
them: the Merkle root over the partition digests (equal to the dataset's directory manifest root)
and the union of the findings (equal to one scan of the whole table). The logic is in
``charter_airflow.partitions``; this file only wires it.

Params: ``directory``, relative to the data folder (``CHARTER_DATA_DIR``); ``use_case`` and
``dataset`` name the policy entry whose ``free_text`` columns get the NER scan.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task
from charter_airflow.dag_factory import DEFAULT_ARGS

with DAG(
    dag_id="partitioned_scan",
    description="Empreinte Merkle et recherche de données personnelles, une tâche par partition",
    schedule=None,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["charter", "integrity", "privacy"],
    params={
        "directory": Param(
            "citizen_requests/training_partitions",
            type="string",
            description="folder of Parquet partitions, relative to the data folder",
        ),
        "use_case": Param("citizen_requests", type="string"),
        "dataset": Param("training", type="string"),
    },
    doc_md=__doc__,
) as dag:

    @task(task_id="plan_partitions")
    def plan_partitions(**context: Any) -> list[dict[str, Any]]:
        """One entry per partition: the arguments of its mapped tasks."""
        from charter_airflow import partitions
        from charter_airflow.runtime import configure_from_airflow, load_policy
        from charter_guardrails.core.errors import ConfigError
        from charter_guardrails.core.policy_models import ColumnRole
        from charter_guardrails.core.settings import get_settings

        configure_from_airflow()
        params = context["params"]
        data_dir = get_settings().data_dir
        directory = (data_dir / params["directory"]).resolve()
        if not directory.is_relative_to(data_dir):
            raise ConfigError(f"params.directory {params['directory']!r} leaves the data folder {data_dir}")
        policy = load_policy(params["use_case"])
        free_text = [c.name for c in policy.dataset(params["dataset"]).columns if c.role is ColumnRole.FREE_TEXT]
        plan = partitions.plan(directory)
        return [
            {
                "name": name,
                "directory": plan["directory"],
                "chunk_size": plan["chunk_size"],
                "algorithm": plan["algorithm"],
                "free_text_columns": free_text,
                "national_identifiers": list(policy.privacy.national_identifiers),
                "phone_region": policy.privacy.phone_region,
            }
            for name in plan["partitions"]
        ]

    @task(task_id="hash_partition")
    def hash_partition(
        name: str,
        directory: str,
        chunk_size: int,
        algorithm: str,
        free_text_columns: list[str],
        national_identifiers: list[str],
        phone_region: str,
    ) -> dict[str, Any]:
        from charter_airflow import partitions

        return {
            **partitions.hash_partition(directory, name, chunk_size=chunk_size, algorithm=algorithm),
            "algorithm": algorithm,
        }

    @task(task_id="scan_partition")
    def scan_partition(
        name: str,
        directory: str,
        chunk_size: int,
        algorithm: str,
        free_text_columns: list[str],
        national_identifiers: list[str],
        phone_region: str,
    ) -> dict[str, Any]:
        from charter_airflow import partitions

        return partitions.scan_partition(
            directory,
            name,
            free_text_columns=free_text_columns,
            national_identifiers=national_identifiers,
            phone_region=phone_region,
        )

    @task(task_id="combine")
    def combine(hashes: list[dict[str, Any]], scans: list[dict[str, Any]]) -> dict[str, Any]:
        import logging

        from charter_airflow import partitions

        hashes = list(hashes)
        algorithms = {h.pop("algorithm") for h in hashes}
        if len(algorithms) != 1:
            raise ValueError(f"the partitions were hashed with different algorithms: {sorted(algorithms)}")
        result = partitions.combine(hashes, list(scans), algorithm=algorithms.pop())
        logging.getLogger(__name__).info(
            "%d partitions, %d rows: Merkle root %s, %d findings (column × entity type)",
            result["partitions"],
            result["rows"],
            result["merkle_root"],
            len(result["findings"]),
        )
        return result

    plan = plan_partitions()
    combine(hash_partition.expand_kwargs(plan), scan_partition.expand_kwargs(plan))
