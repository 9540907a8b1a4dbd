"""The file the guardrails checked is the file that gets used (issue #16, item 2).

The refresh tasks run here in DAG order, in this process, on a real SQLite ledger; a task instance stand-in serves
the XComs of the tasks before it, as Airflow's does. The delivery is swapped between the integrity step and the
step that builds the training input: that step refuses it with the integrity verdict and incident of a mismatch.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

USE_CASE = "citizen_requests"
TRAINING = f"{USE_CASE}/training.csv"


class TaskInstance:
    """The XCom side of a task instance: the return values of the tasks that ran before."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcoms.get(task_ids)


@pytest.fixture
def delivery(charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated SQLite ledger, the sample delivery (and its corrupted variant) and its registered manifest."""
    from charter_demo.sample_data import generate
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.ledger import db

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    data_dir = get_settings().data_dir
    generate(data_dir, {USE_CASE: load_policy(USE_CASE)}, rows=400)
    path = data_dir / TRAINING
    assert charter(["hash", str(path), "--dataset", f"{USE_CASE}.training", "--quiet"]) == 0
    return path


def _context(run_id: str, ti: TaskInstance | None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "dag_run": SimpleNamespace(dag_id=f"{USE_CASE}_model_refresh", run_id=run_id),
        "params": {"training_file": TRAINING},
    }
    if ti is not None:
        context["ti"] = ti
    return context


def _run(task_id: str, context: dict[str, Any], *inputs: Any) -> Any:
    from charter_airflow.dag_factory import REFRESH_STEPS
    from charter_airflow.guardrail_tasks import run_step
    from charter_airflow.runtime import load_policy

    step = next(s for s in REFRESH_STEPS if s.task_id == task_id)
    output = run_step(step, policy=load_policy(USE_CASE), context=context, inputs=inputs)
    if "ti" in context:
        context["ti"].xcoms[task_id] = output
    return output


def _swap(delivery: Path) -> None:
    """Another file takes the delivery's name (a new inode, the same size: a few digits differ)."""
    swapped = delivery.with_name("incoming.tmp")
    shutil.copyfile(delivery.with_name("training__corrupted.csv"), swapped)
    assert swapped.stat().st_size == delivery.stat().st_size
    os.replace(swapped, delivery)


def _ledger(run_id: str) -> dict[str, Any]:
    from charter_guardrails.ledger.models import (
        AlertOutbox,
        CheckResultRecord,
        CheckRun,
        Incident,
        ManifestVerification,
    )
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        run = session.scalars(select(CheckRun).where(CheckRun.run_id == run_id)).one()
        results = session.scalars(
            select(CheckResultRecord).where(CheckResultRecord.check_run_id == run.id).order_by(CheckResultRecord.id)
        ).all()
        incidents = session.scalars(select(Incident).where(Incident.run_id == run_id)).all()
        return {
            "results": [(r.check, r.verdict, r.evidence.get("outcome"), r.summary) for r in results],
            "evidence": [r.evidence for r in results],
            "incidents": [(i.breach_type, i.dataset, i.severity) for i in incidents],
            "incident_facts": [i.facts for i in incidents],
            "alerts": session.scalars(
                select(AlertOutbox).where(AlertOutbox.incident_id.in_([i.id for i in incidents]))
            ).all(),
            "verifications": [
                v.outcome
                for v in session.scalars(
                    select(ManifestVerification)
                    .where(ManifestVerification.run_id == run_id)
                    .order_by(ManifestVerification.id)
                )
            ],
        }


def _work_files(run_id: str) -> list[str]:
    from charter_guardrails.core.settings import get_settings

    folder = get_settings().home / "work" / USE_CASE / run_id
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_delivery_swapped_after_verification_is_refused_by_the_training_input_step(delivery: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from charter_airflow.publish import run_results
    from charter_airflow.runtime import load_policy
    from charter_guardrails.decision.gate import REFRESH_CHECKS, decide

    context = _context("manual__swapped", TaskInstance())
    verified = _run("verify_integrity", context)
    assert verified["verdict"] == "pass"
    pin = verified["pin"]
    assert (pin["path"], pin["size_bytes"], pin["version_id"]) == (TRAINING, delivery.stat().st_size, None)
    assert len(pin["merkle_root"]) == 64  # the SHA-256 Merkle root of the verified bytes

    _swap(delivery)
    with pytest.raises(AirflowFailException, match="guardrail integrity failed") as refused:
        _run("pseudonymise", context)
    assert "no longer matches the bytes verified in this run" in str(refused.value)
    assert "deliver the file again" in str(refused.value)
    assert "incident #" in str(refused.value)

    ledger = _ledger("manual__swapped")
    # The run's integrity verdict is now the failing one (the ledger keeps one per check and dataset; the audit
    # chain and the verification rows keep both).
    assert [r[:3] for r in ledger["results"]] == [("integrity", "fail", "data_changed")]
    evidence = ledger["evidence"][0]
    assert evidence["file"] == "training.csv"
    assert evidence["expected_root"] == pin["merkle_root"]
    assert evidence["actual_root"] != pin["merkle_root"]
    assert evidence["changed_chunk_count"] >= 1
    assert all("rows" in r for r in evidence["ranges"])  # localised with the manifest's chunk list
    assert ledger["incidents"] == [("integrity", "training", "critical")]
    assert ledger["incident_facts"][0]["outcome"] == "data_changed"
    assert ledger["alerts"], "the incident's alerts are queued in its transaction"
    assert ledger["verifications"] == ["intact", "data_changed"]
    assert _work_files("manual__swapped") == []  # no training input, and no raw copy left behind
    assert "integrity" in decide(run_results(load_policy(USE_CASE), context), REFRESH_CHECKS).failed

    # A step that checks the file in place refuses it as well, before its own check runs.
    with pytest.raises(AirflowFailException, match="guardrail integrity failed"):
        _run("validate_quality", context)
    again = _ledger("manual__swapped")
    assert [r[:3] for r in again["results"]] == [("integrity", "fail", "data_changed")]
    assert again["verifications"] == ["intact", "data_changed"]  # the same verdict again: one row per verdict
    assert again["incidents"] == ledger["incidents"]  # one incident per run and dataset


def test_the_verified_delivery_becomes_the_training_input(delivery: Path) -> None:
    import pandas as pd

    context = _context("manual__intact", TaskInstance())
    assert _run("verify_integrity", context)["verdict"] == "pass"
    pseudonymised = _run("pseudonymise", context)
    assert Path(pseudonymised).name == "training__pseudonymised.parquet"
    assert _work_files("manual__intact") == ["training__pseudonymised.parquet"]  # the raw copy is removed
    assert len(pd.read_parquet(pseudonymised)) == 400
    assert _ledger("manual__intact")["incidents"] == []


def test_inside_airflow_a_step_without_the_pin_refuses_to_read_the_delivery(delivery: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="no pinned reference from verify_integrity"):
        _run("pseudonymise", _context("manual__unpinned", TaskInstance()))
    assert _work_files("manual__unpinned") == []


def test_an_accepted_batch_swapped_before_routing_is_not_passed_on(delivery: Path) -> None:
    from charter_airflow.pinned_steps import accept_verified
    from charter_airflow.runtime import load_policy

    context = _context("manual__route", TaskInstance())
    _run("verify_integrity", context)
    target = delivery.parent / "accepted" / "training.csv"
    policy = load_policy(USE_CASE)
    assert accept_verified(policy, context, delivery, target)
    assert target.read_bytes() == delivery.read_bytes()
    target.unlink()

    _swap(delivery)
    assert not accept_verified(policy, context, delivery, target)  # recorded, not raised: the batch is quarantined
    assert not target.exists()
    ledger = _ledger("manual__route")
    assert [r[:3] for r in ledger["results"]] == [("integrity", "fail", "data_changed")]
    assert ledger["incidents"] == [("integrity", "training", "critical")]
    assert ledger["verifications"] == ["intact", "data_changed"]


def test_the_steps_after_integrity_hold_to_its_pin_in_both_dags() -> None:
    from charter_airflow.dag_factory import INFERENCE_STEPS, REFRESH_STEPS, build_inference_dag
    from charter_airflow.runtime import policy_file_for

    assert {s.task_id: s.pin for s in REFRESH_STEPS} == {
        "kill_switch": None,
        "verify_integrity": None,
        "scan_personal_data": "check",
        "pseudonymise": "copy",
        "validate_quality": "check",
        "check_representativeness": "check",
        "check_proportionality": None,  # reads the run's own pseudonymised copy
        "train_candidate": None,
        "evaluate": None,
        "footprint_gate": None,
    }
    assert {s.task_id: s.pin for s in INFERENCE_STEPS} == {
        "kill_switch": None,
        "verify_integrity": None,
        "scan_personal_data": "check",
        "validate_quality": "check",
        "check_drift": "check",
    }
    dag = build_inference_dag(policy_file_for(USE_CASE))
    for task_id in ("plan_personal_data_scan", "validate_quality", "check_drift"):
        assert dag.get_task(task_id).upstream_task_ids == {"verify_integrity"}, task_id
    assert dag.get_task("verify_integrity").upstream_task_ids == {"kill_switch"}
