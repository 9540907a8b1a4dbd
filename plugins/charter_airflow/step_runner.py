"""A DAG's guardrail steps run in order in one process, as its tasks run them, without a scheduler.

Each step goes through :func:`~charter_airflow.guardrail_tasks.run_step` (the function the DAG's task calls), with
a run context whose task instance serves the XComs of the steps before: the pin of ``verify_integrity``, the
copy of ``pseudonymise``, the candidate of ``train_candidate``. The verdicts, incidents and verifications go to
the ledger as in a DAG run. ``make run`` uses it for the refresh of a table-backed training dataset
(``scripts/scenarios/15_table_training.py``), where no human answers a form; the tests use it to act between two
steps (a row changed, an object written again).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter_guardrails.core.policy import UseCasePolicy

    from charter_airflow.guardrail_tasks import GuardrailStep


class StepXComs:
    """The XCom side of a task instance: the return values of the steps that ran before."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcoms.get(task_ids)


def step_context(dag_id: str, run_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run's context as a step reads it: the DAG run, its params, the task instance that holds the XComs."""
    return {"dag_run": SimpleNamespace(dag_id=dag_id, run_id=run_id), "params": params or {}, "ti": StepXComs()}


def run_one(task_id: str, policy: UseCasePolicy, context: dict[str, Any], steps: Sequence[GuardrailStep]) -> Any:
    """Run the step ``task_id`` of ``steps`` with the XComs of those before; its XCom, kept for the next."""
    from charter_airflow.guardrail_tasks import run_step

    step = next(s for s in steps if s.task_id == task_id)
    inputs = tuple(context["ti"].xcoms[name] for name in step.inputs)
    output = run_step(step, policy=policy, context=context, inputs=inputs)
    context["ti"].xcoms[task_id] = output
    return output


def run_refresh_guardrails(policy: UseCasePolicy, run_id: str) -> dict[str, Any]:
    """Every guardrail step of the refresh DAG, in order, up to the gate; the run context (with its XComs)."""
    from charter_airflow.dag_factory import REFRESH_STEPS

    context = step_context(f"{policy.id}_model_refresh", run_id)
    for step in REFRESH_STEPS:
        run_one(step.task_id, policy, context, REFRESH_STEPS)
    return context
