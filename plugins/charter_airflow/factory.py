"""Build a use case's DAGs from its policy file: adding a use case is adding a YAML file.

Only the policy's id, title and tags are read at parse time (a small YAML read); checks
run in task bodies.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

#: Tags a DAG of this project may carry (the DAG integrity test enforces it).
APPROVED_TAGS = frozenset(
    {
        "charter",
        "personal-data",
        "non-personal",
        "decision-support",
        "integrity",
        "privacy",
        "quality",
        "equity",
        "refresh",
        "inference",
        "incidents",
        "monitoring",
        "governance",
    }
)

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
    return {
        "id": raw.get("id", policy_file.stem),
        "title": raw.get("title", policy_file.stem),
        "tags": [t for t in raw.get("tags", []) if t in APPROVED_TAGS],
    }


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
            from charter_guardrails.checks.declaration import check_declaration
            from charter_guardrails.core.policy import UseCasePolicy

            from charter_airflow.runtime import persist_and_gate

            policy = UseCasePolicy.from_file(policy_file)
            return persist_and_gate(check_declaration(policy), policy=policy, context=context)

        check_declaration_task()
    return dag


def model_asset_uri(use_case: str) -> str:
    return f"charter://{use_case}/model"


def inference_asset_uri(use_case: str) -> str:
    return f"charter://{use_case}/inference_batch"


def build_model_refresh_dag(policy_file: Path) -> Any:
    """``<use_case>_model_refresh``: every guardrail, the gate, a human decision, then publish.

    Fail-closed: publish runs only after all guardrails passed (or a human overrode an
    overridable one with a justification) and a named approver answered in the HITL form.
    """
    from airflow.providers.standard.operators.hitl import HITLOperator
    from airflow.sdk import DAG, Asset, Param, TriggerRule, task
    from charter_guardrails.decision.gate import REFRESH_CHECKS

    header = _policy_header(policy_file)
    use_case, path = header["id"], str(policy_file)
    with DAG(
        dag_id=f"{use_case}_model_refresh",
        description=f"Mise à jour du modèle « {header['title']} » sous garde-fous de la charte",
        schedule=None,
        catchup=False,
        default_args=DEFAULT_ARGS,
        tags=sorted({"charter", "refresh", *header["tags"]}),
        params={
            "training_file": Param(
                None,
                type=["null", "string"],
                description="another delivery of the training dataset, relative to the data folder",
            )
        },
        doc_md=build_model_refresh_dag.__doc__,
    ) as dag:

        @task(task_id="kill_switch")
        def kill_switch_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.kill_switch(steps.load(path), context)

        @task(task_id="verify_integrity")
        def integrity_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.verify_integrity(steps.load(path), context, "training", "training_file")

        @task(task_id="scan_personal_data")
        def privacy_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.scan_personal_data(steps.load(path), context, "training", "training_file")

        @task(task_id="pseudonymise")
        def pseudonymise_task(**context: Any) -> str:
            from charter_airflow import steps

            return steps.pseudonymise(steps.load(path), context, "training", "training_file")

        @task(task_id="validate_quality")
        def quality_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.validate_quality(steps.load(path), context, "training", "training_file")

        @task(task_id="check_representativeness")
        def representativeness_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.check_representativeness(steps.load(path), context, "training", "training_file")

        @task(task_id="check_proportionality")
        def proportionality_task(pseudonymised: str, **context: Any) -> str:
            from charter_airflow import steps

            return steps.check_proportionality(steps.load(path), context, pseudonymised)

        @task(task_id="train_candidate")
        def train_task(minimised: str, **context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.train(steps.load(path), context, minimised)

        @task(task_id="evaluate")
        def evaluate_task(candidate: dict[str, Any], **context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.evaluate(steps.load(path), context, candidate)

        @task(task_id="footprint_gate")
        def footprint_task(candidate: dict[str, Any], evaluation: dict[str, Any], **context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.footprint(steps.load(path), context, candidate, evaluation)

        @task(task_id="gate", trigger_rule=TriggerRule.ALL_DONE)
        def gate_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.gate(steps.load(path), context, REFRESH_CHECKS)

        human_review = HITLOperator(
            task_id="human_review",
            subject=f"Charte IA : valider la mise à jour du modèle {use_case} ?",
            body="{{ ti.xcom_pull(task_ids='gate')['body'] }}",
            options=["Approve", "Override", "Reject"],
            params={
                "justification": Param("", type="string", description="obligatoire pour Override (≥ 20 caractères)")
            },
            retries=0,
        )

        @task(task_id="publish", outlets=[Asset(model_asset_uri(use_case))])
        def publish_task(candidate: dict[str, Any], **context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            ti = context["ti"]
            return steps.publish(
                steps.load(path),
                context,
                gate_output=ti.xcom_pull(task_ids="gate"),
                answer=ti.xcom_pull(task_ids="human_review"),
                candidate=candidate,
            )

        switch = kill_switch_task()
        integrity = integrity_task()
        privacy = privacy_task()
        pseudonymised = pseudonymise_task()
        quality = quality_task()
        representativeness = representativeness_task()
        # XComArgs stand for the upstream return values at run time (TaskFlow), hence the type ignores.
        minimised = proportionality_task(pseudonymised)  # type: ignore[arg-type]
        candidate = train_task(minimised)  # type: ignore[arg-type]
        evaluation = evaluate_task(candidate)  # type: ignore[arg-type]
        footprint = footprint_task(candidate, evaluation)  # type: ignore[arg-type]
        decision = gate_task()
        published = publish_task(candidate)  # type: ignore[arg-type]
        switch >> integrity >> privacy >> pseudonymised
        pseudonymised >> [quality, representativeness]
        [quality, representativeness] >> minimised
        [integrity, privacy, quality, representativeness, minimised, candidate, evaluation, footprint] >> decision
        decision >> human_review >> published
    return dag


def build_inference_dag(policy_file: Path) -> Any:
    """``<use_case>_inference_guardrails``: an incoming batch is passed on or quarantined.

    Scheduled on the Asset of incoming batches; refuses to run while the production model is suspended.
    """
    from airflow.sdk import DAG, Asset, Param, TriggerRule, task

    header = _policy_header(policy_file)
    use_case, path = header["id"], str(policy_file)
    with DAG(
        dag_id=f"{use_case}_inference_guardrails",
        description=f"Garde-fous des lots d'inférence « {header['title']} »",
        schedule=[Asset(inference_asset_uri(use_case))],
        catchup=False,
        default_args=DEFAULT_ARGS,
        tags=sorted({"charter", "inference", *header["tags"]}),
        params={
            "batch_file": Param(None, type=["null", "string"], description="the batch, relative to the data folder")
        },
        doc_md=build_inference_dag.__doc__,
    ) as dag:

        @task(task_id="kill_switch")
        def kill_switch_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.kill_switch(steps.load(path), context)

        @task(task_id="verify_integrity")
        def integrity_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.verify_integrity(steps.load(path), context, "inference", "batch_file")

        @task(task_id="scan_personal_data")
        def privacy_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.scan_personal_data(steps.load(path), context, "inference", "batch_file")

        @task(task_id="validate_quality")
        def quality_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.validate_quality(steps.load(path), context, "inference", "batch_file")

        @task(task_id="check_drift")
        def drift_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.check_drift(steps.load(path), context, "inference", "batch_file")

        @task(task_id="route_batch", trigger_rule=TriggerRule.ALL_DONE)
        def route_task(**context: Any) -> dict[str, Any]:
            from charter_airflow import steps

            return steps.route_batch(steps.load(path), context, "inference", "batch_file")

        switch = kill_switch_task()
        checks = [integrity_task(), privacy_task(), quality_task(), drift_task()]
        switch >> checks
        checks >> route_task()
    return dag


def policy_file_for(use_case: str) -> Path:
    from charter_guardrails.core.settings import get_settings

    return get_settings().policies_dir / f"{use_case}.yaml"
