"""A use case's DAGs, built from its policy file as lists of guardrail steps: adding a use case is adding a YAML file.

Each guardrail task is one row of a step table below, turned into a task by
:func:`charter_airflow.guardrail_tasks.guardrail_task`; a builder only adds the tasks that follow the
guardrails (the gate, the human review, publish, the batch routing) and the wiring. Only the policy's
id, title and tags are read at parse time (a small YAML read); checks run in task bodies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from charter_guardrails.core.catalogue import CheckName

from charter_airflow.batch_routing import accepted_batch_asset_uri, route_task
from charter_airflow.guardrail_tasks import (
    GuardrailStep,
    call_declaration,
    call_evaluate,
    call_file_check,
    call_footprint,
    call_kill_switch,
    call_proportionality,
    call_quality,
    call_train,
)
from charter_airflow.partitioned_guardrail import call_partitioned_personal_data, task_for
from charter_airflow.pinned_steps import INTEGRITY_STEP, call_pseudonymise
from charter_airflow.runtime import policy_file_for

__all__ = [
    "APPROVED_TAGS",
    "DECLARATION_STEPS",
    "DEFAULT_ARGS",
    "INFERENCE_STEPS",
    "REFRESH_STEPS",
    "accepted_batch_asset_uri",
    "build_inference_dag",
    "build_model_refresh_dag",
    "build_policy_review_dag",
    "inference_asset_uri",
    "model_asset_uri",
    "model_suspended_asset_uri",
    "policy_file_for",
]

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

_KILL_SWITCH = GuardrailStep(
    task_id="kill_switch",
    function="charter_guardrails.decision.model_registry:check_kill_switch",
    call=call_kill_switch,
    checks=(CheckName.KILL_SWITCH,),
)

#: ``<use_case>_policy_review``: the declaration check.
DECLARATION_STEPS = (
    GuardrailStep(
        task_id="check_declaration",
        function="charter_guardrails.checks.declaration:check_declaration",
        call=call_declaration,
        checks=(CheckName.DECLARATION,),
    ),
)

# The checks of a delivered file, declared once; each DAG binds them to the dataset role it checks.
_INTEGRITY = replace(INTEGRITY_STEP, task_id="verify_integrity")
# Planned, mapped over the partitions of the delivery, then merged into one result (partitioned_guardrail.py).
_PERSONAL_DATA = GuardrailStep(
    task_id="scan_personal_data",
    function="charter_guardrails.checks.privacy.verdict:check_personal_data",
    call=call_partitioned_personal_data,
    checks=(CheckName.PERSONAL_DATA,),
)
_QUALITY = GuardrailStep(
    task_id="validate_quality",
    function="charter_guardrails.checks.quality.runner:validate_file",
    call=call_quality,
    checks=(CheckName.QUALITY,),
)


def _on_delivery(role: str, file_param: str, *steps: GuardrailStep) -> tuple[GuardrailStep, ...]:
    """``steps`` bound to the policy's dataset of ``role``, or to the delivery named by ``params[file_param]``. The
    first is the integrity step; the others hold the file to the bytes it verified (``pinned_steps``): each checks
    it again first, unless it uses a verified copy (``pin="copy"``)."""
    pins = (None, *(step.pin or "check" for step in steps[1:]))
    return tuple(replace(s, role=role, file_param=file_param, pin=pin) for s, pin in zip(steps, pins, strict=True))


#: ``<use_case>_model_refresh``: the guardrails of a training delivery and of its candidate, in DAG order.
REFRESH_STEPS = (
    _KILL_SWITCH,
    *_on_delivery(
        "training",
        "training_file",
        _INTEGRITY,
        _PERSONAL_DATA,
        GuardrailStep(
            task_id="pseudonymise",
            function="charter_guardrails.checks.privacy.pseudonymise:pseudonymise_frame",
            call=call_pseudonymise,
            pin="copy",
        ),
        _QUALITY,
        GuardrailStep(
            task_id="check_representativeness",
            function="charter_guardrails.checks.quality.checks:representativeness_of_file",
            call=call_file_check,
            checks=(CheckName.REPRESENTATIVENESS,),
        ),
    ),
    GuardrailStep(
        task_id="check_proportionality",
        function="charter_guardrails.checks.proportionality:check_proportionality",
        call=call_proportionality,
        checks=(CheckName.PROPORTIONALITY,),
        inputs=("pseudonymise",),
    ),
    GuardrailStep(
        task_id="train_candidate",
        function="charter_guardrails.refresh.training:train_candidate",
        call=call_train,
        checks=(CheckName.TRAINING,),
        inputs=("check_proportionality",),
    ),
    GuardrailStep(
        task_id="evaluate",
        function="charter_guardrails.refresh.evaluation:evaluate_candidate",
        call=call_evaluate,
        checks=(CheckName.PERFORMANCE, CheckName.FAIRNESS),
        inputs=("train_candidate",),
    ),
    GuardrailStep(
        task_id="footprint_gate",
        function="charter_guardrails.refresh.footprint:check_footprint",
        call=call_footprint,
        checks=(CheckName.FOOTPRINT,),
        inputs=("train_candidate", "evaluate"),
    ),
)

#: ``<use_case>_inference_guardrails``: the guardrails of an incoming batch.
INFERENCE_STEPS = (
    _KILL_SWITCH,
    *_on_delivery(
        "inference",
        "batch_file",
        _INTEGRITY,
        _PERSONAL_DATA,
        _QUALITY,
        GuardrailStep(
            task_id="check_drift",
            function="charter_guardrails.checks.quality.checks:drift_of_file",
            call=call_file_check,
            checks=(CheckName.DRIFT,),
        ),
    ),
)


#: The refresh tasks the gate waits for (whatever their state: it reads their verdicts from the ledger).
_GATE_AFTER = (
    "verify_integrity",
    "scan_personal_data",
    "validate_quality",
    "check_representativeness",
    "check_proportionality",
    "train_candidate",
    "evaluate",
    "footprint_gate",
)


def model_asset_uri(use_case: str) -> str:
    return f"charter://{use_case}/model"


def model_suspended_asset_uri(use_case: str) -> str:
    """The Asset the governance view updates when it suspends the production model (the kill switch)."""
    return f"charter://{use_case}/model/suspended"


def _reads_suspension(kill_switch: Any, use_case: str) -> None:
    """Declare the suspension Asset as an inlet of the ``kill_switch`` task, the task that reads it: the DAG
    declares it, so Airflow registers it and consumers may schedule on it. Not an outlet: the task does not
    suspend anything."""
    from airflow.sdk import Asset

    kill_switch.operator.inlets = [Asset(model_suspended_asset_uri(use_case))]


def inference_asset_uri(use_case: str) -> str:
    return f"charter://{use_case}/inference_batch"


def _policy_header(policy_file: Path) -> dict[str, Any]:
    """id, title and tags without validating the whole model (tasks load and validate the policy)."""
    import yaml

    with policy_file.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    return {
        "id": raw.get("id", policy_file.stem),
        "title": raw.get("title", policy_file.stem),
        "tags": [t for t in raw.get("tags", []) if t in APPROVED_TAGS],
    }


def _dag(
    header: dict[str, Any], suffix: str, *, description: str, tags: Iterable[str], schedule: Any, **kwargs: Any
) -> Any:
    from airflow.sdk import DAG

    return DAG(
        dag_id=f"{header['id']}_{suffix}",
        description=description,
        schedule=schedule,
        catchup=False,
        default_args=DEFAULT_ARGS,
        tags=sorted({"charter", *tags, *header["tags"]}),
        **kwargs,
    )


def guardrails(steps: Iterable[GuardrailStep], policy_file: Path) -> dict[str, Any]:
    """The tasks of ``steps`` in the current DAG, by task id; a step's inputs are its upstreams' outputs.
    The partitioned personal-data step is a task group (plan, mapped scans, merge): ``>>`` links its ends."""
    outputs: dict[str, Any] = {}
    for step in steps:
        outputs[step.task_id] = task_for(step, policy_file)(*(outputs[name] for name in step.inputs))
    return outputs


def build_policy_review_dag(policy_file: Path) -> Any:
    """``<use_case>_policy_review``: validates the policy and records the declaration check."""
    header = _policy_header(policy_file)
    description = f"Déclaration de l'usage « {header['title']} » : finalité, base légale, recours humain"
    with _dag(
        header, "policy_review", description=description, tags=["governance"], schedule=None, doc_md=__doc__
    ) as dag:
        guardrails(DECLARATION_STEPS, policy_file)
    return dag


def build_model_refresh_dag(policy_file: Path) -> Any:
    """``<use_case>_model_refresh``: every guardrail, the gate, a human decision, then publish.

    Fail-closed: publish runs only after all guardrails passed (or a human overrode an
    overridable one with a justification) and a named approver answered in the HITL form.
    """
    from airflow.sdk import Param

    header = _policy_header(policy_file)
    use_case, path = header["id"], policy_file
    training_file = Param(
        None,
        type=["null", "string"],
        description="another delivery of the training dataset, relative to the data folder",
    )
    with _dag(
        header,
        "model_refresh",
        description=f"Mise à jour du modèle « {header['title']} » sous garde-fous de la charte",
        tags=["refresh"],
        schedule=None,
        params={"training_file": training_file},
        doc_md=build_model_refresh_dag.__doc__,
    ) as dag:
        step = guardrails(REFRESH_STEPS, path)
        _reads_suspension(step["kill_switch"], use_case)
        decision = _gate_task(path)()
        published = _publish_task(path, use_case)()
        step["kill_switch"] >> step["verify_integrity"] >> step["scan_personal_data"] >> step["pseudonymise"]
        data_checks = [step["validate_quality"], step["check_representativeness"]]
        step["pseudonymise"] >> data_checks
        data_checks >> step["check_proportionality"]
        [step[name] for name in _GATE_AFTER] >> decision
        step["train_candidate"] >> published
        decision >> _human_review(use_case, path) >> published
    return dag


def _gate_task(policy_file: Path) -> Any:
    from airflow.sdk import TriggerRule, task

    @task(task_id="gate", trigger_rule=TriggerRule.ALL_DONE)
    def gate(**context: Any) -> dict[str, Any]:
        from charter_guardrails.decision.gate import REFRESH_CHECKS

        from charter_airflow import publish
        from charter_airflow.runtime import load_policy

        return publish.gate(load_policy(policy_file), context, REFRESH_CHECKS)

    return gate


def _human_review(use_case: str, policy_file: Path) -> Any:
    """The HITL form, assigned when it opens to the policy's approvers but the run's triggering user; its body is
    the approver's brief, rendered then from the ledger's verdicts."""
    from airflow.sdk import Param

    from charter_airflow.review import PolicyReviewOperator

    return PolicyReviewOperator(
        task_id="human_review",
        policy_file=str(policy_file),
        subject=f"Charte IA : valider la mise à jour du modèle {use_case} ?",
        params={"justification": Param("", type="string", description="obligatoire pour Override (≥ 20 caractères)")},
        retries=0,
    )


def _publish_task(policy_file: Path, use_case: str) -> Any:
    from airflow.sdk import Asset, task

    @task(task_id="publish", outlets=[Asset(model_asset_uri(use_case))])
    def publish_model(**context: Any) -> dict[str, Any]:
        """Publish on the ledger's records only: the gate's verdicts, the candidate, the human answer."""
        from charter_guardrails.decision.gate import REFRESH_CHECKS

        from charter_airflow import publish
        from charter_airflow.runtime import load_policy

        return publish.publish(load_policy(policy_file), context, expected=REFRESH_CHECKS)

    return publish_model


def build_inference_dag(policy_file: Path) -> Any:
    """``<use_case>_inference_guardrails``: an incoming batch is passed on or quarantined.

    Scheduled on the Asset of incoming batches; refuses to run while the production model is suspended.
    """
    from airflow.sdk import Asset, Param

    header = _policy_header(policy_file)
    path = policy_file
    batch_file = Param(None, type=["null", "string"], description="the batch, relative to the data folder")
    with _dag(
        header,
        "inference_guardrails",
        description=f"Garde-fous des lots d'inférence « {header['title']} »",
        tags=["inference"],
        schedule=[Asset(inference_asset_uri(header["id"]))],
        params={"batch_file": batch_file},
        doc_md=build_inference_dag.__doc__,
    ) as dag:
        step = guardrails(INFERENCE_STEPS, path)
        _reads_suspension(step["kill_switch"], header["id"])
        # Integrity first: the other checks, and the routing, hold the batch to the bytes it verified.
        checks = [step[s.task_id] for s in INFERENCE_STEPS if s.task_id not in {"kill_switch", "verify_integrity"}]
        step["kill_switch"] >> step["verify_integrity"] >> checks
        [step["verify_integrity"], *checks] >> route_task(path, header["id"])()
    return dag
