"""The step tables of the generated DAGs: what the gate expects, what may be overridden, the task ids."""

from __future__ import annotations

import pytest


def test_the_tables_record_exactly_what_the_gate_expects() -> None:
    from charter_airflow.dag_factory import INFERENCE_STEPS, REFRESH_STEPS
    from charter_guardrails.decision.gate import INFERENCE_CHECKS, REFRESH_CHECKS

    assert [c for s in REFRESH_STEPS for c in s.checks] == list(REFRESH_CHECKS)
    assert [c for s in INFERENCE_STEPS for c in s.checks] == list(INFERENCE_CHECKS)


def test_hard_steps_come_from_the_catalogue() -> None:
    from charter_airflow.dag_factory import REFRESH_STEPS

    hard = {s.task_id for s in REFRESH_STEPS if s.hard}
    assert hard == {"kill_switch", "verify_integrity", "scan_personal_data", "check_proportionality", "train_candidate"}


@pytest.mark.parametrize("table", ["DECLARATION_STEPS", "REFRESH_STEPS", "INFERENCE_STEPS"])
def test_every_step_names_a_library_function_and_known_inputs(table: str) -> None:
    from charter_airflow import dag_factory
    from charter_airflow.guardrail_tasks import resolve

    seen: set[str] = set()
    for step in getattr(dag_factory, table):
        assert step.function.startswith("charter_guardrails."), step
        assert callable(resolve(step.function)), step.function
        assert set(step.inputs) <= seen, f"{step.task_id} takes the output of a later step"
        assert (step.role is None) == (step.file_param is None), step.task_id
        seen.add(step.task_id)


def test_the_refresh_dag_keeps_its_tasks_and_wiring() -> None:
    from charter_airflow.dag_factory import build_model_refresh_dag
    from charter_airflow.runtime import policy_file_for

    dag = build_model_refresh_dag(policy_file_for("citizen_requests"))
    assert sorted(dag.task_ids) == sorted(
        [
            "kill_switch",
            "verify_integrity",
            "plan_personal_data_scan",
            "scan_personal_data_partition",
            "scan_personal_data",
            "pseudonymise",
            "validate_quality",
            "check_representativeness",
            "check_proportionality",
            "train_candidate",
            "evaluate",
            "footprint_gate",
            "gate",
            "human_review",
            "publish",
        ]
    )
    assert dag.get_task("gate").upstream_task_ids == {
        "verify_integrity",
        "scan_personal_data",
        "validate_quality",
        "check_representativeness",
        "check_proportionality",
        "train_candidate",
        "evaluate",
        "footprint_gate",
    }
    assert dag.get_task("footprint_gate").upstream_task_ids == {"train_candidate", "evaluate"}
    assert dag.get_task("publish").upstream_task_ids == {"human_review", "train_candidate"}
