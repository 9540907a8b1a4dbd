"""Build a use case's DAGs from its policy file: adding a use case is adding a YAML file.

Only the policy's id, title and tags are read at parse time (a small YAML read); checks
run in task bodies.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

#: Tags a DAG of this project may carry (the DAG integrity test enforces it).
APPROVED_TAGS = frozenset({
    "charter", "personal-data", "non-personal", "decision-support", "integrity", "privacy", "quality",
    "equity", "refresh", "inference", "incidents", "monitoring", "governance",
})

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-governance",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
}


def _policy_header(policy_file: Path) -> dict[str, Any]:
    """id, title and tags without validating the whole model (kept for task time)."""
    import yaml

    with policy_file.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    return {"id": raw.get("id", policy_file.stem), "title": raw.get("title", policy_file.stem),
            "tags": [t for t in raw.get("tags", []) if t in APPROVED_TAGS]}


def build_policy_review_dag(policy_file: Path) -> Any:
    """``<use_case>_policy_review``: validates the policy and records the declaration check."""
    from airflow.sdk import DAG, task

    header = _policy_header(policy_file)
    use_case = header["id"]
    with DAG(
        dag_id=f"{use_case}_policy_review",
        description=f"Déclaration de l'usage « {header['title']} » : finalité, base légale, recours humain",
        schedule=None,
        catchup=False,
        default_args=DEFAULT_ARGS,
        tags=sorted({"charter", "governance", *header["tags"]}),
        doc_md=__doc__,
    ) as dag:

        @task(task_id="check_declaration")
        def check_declaration_task(**context: Any) -> dict[str, Any]:
            from charter_guardrails.declaration import check_declaration
            from charter_guardrails.policy import UseCasePolicy

            from charter_airflow.runtime import persist_and_gate

            policy = UseCasePolicy.from_file(policy_file)
            return persist_and_gate(check_declaration(policy), policy=policy, context=context)

        check_declaration_task()
    return dag


def policy_file_for(use_case: str) -> Path:
    from charter_guardrails.settings import get_settings

    return get_settings().policies_dir / f"{use_case}.yaml"
