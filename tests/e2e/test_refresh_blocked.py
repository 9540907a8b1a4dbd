"""Fail-closed end to end with dag.test(): a guardrail that cannot be overridden stops the refresh
before any human is asked, publish never runs and the registry is unchanged."""

from __future__ import annotations

import pytest

from tests.e2e.support import ledger_state, register


def _states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def _dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors
    return bag.get_dag(dag_id)


@pytest.mark.parametrize(
    ("variant", "registered", "blocking_task", "incident"),
    [
        (
            "citizen_requests/training__pii_leak.csv",
            "citizen_requests/training__pii_leak.csv",
            "scan_personal_data",
            None,
        ),
        ("citizen_requests/training__corrupted.csv", "citizen_requests/training.csv", "verify_integrity", "integrity"),
    ],
    ids=["pii_leak", "corruption"],
)
def test_hard_failure_blocks_before_any_human(e2e_home, variant, registered, blocking_task, incident) -> None:
    register("citizen_requests", "training", registered)
    before = ledger_state("citizen_requests")["versions"]
    dag_run = _dag("citizen_requests_model_refresh").test(run_conf={"training_file": variant})
    states = _states(dag_run)
    assert states[blocking_task] == "failed"
    assert states["gate"] == "failed"
    assert states["human_review"] == "upstream_failed"
    assert states["publish"] == "upstream_failed"
    after = ledger_state("citizen_requests")
    assert after["versions"] == before == []
    decided = [r for r in after["runs"] if r[0] == "citizen_requests_model_refresh"]
    assert decided
    assert decided[-1][1] == "blocked"
    if incident:
        assert any(i[0] == incident for i in after["incidents"])
    else:  # a forbidden PII column in a personal dataset is a GDPR-compliance incident
        assert after["incidents"], "the PII leak raised no incident"
    from charter_guardrails.cli.main import main as charter

    assert charter(["audit", "verify"]) == 0


def _seed_production_version() -> None:
    """A published version of citizen_requests, so that the inference DAG has a model to guard."""
    from charter_guardrails.decision.model_registry import publish_version
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as s:
        publish_version(
            s,
            use_case="citizen_requests",
            run_id="seed",
            metrics={},
            artifact_path=None,
            artifact_sha256=None,
            approved_by="claire",
        )


def test_kill_switch_stops_inference_and_refresh(e2e_home) -> None:
    from charter_guardrails.decision.model_registry import suspend
    from charter_guardrails.ledger.store import ledger_session

    _seed_production_version()
    with ledger_session() as s:
        suspend(s, "citizen_requests", actor="dpo", reason="signalement de la médiation")

    # The inference DAG: no guardrail runs, the batch is quarantined, not used.
    register("citizen_requests", "inference", "citizen_requests/inference_batch.csv")
    states = _states(_dag("citizen_requests_inference_guardrails").test())
    assert states["kill_switch"] == "failed"
    assert all(
        states[t] == "upstream_failed"
        for t in ("verify_integrity", "scan_personal_data", "validate_quality", "check_drift")
    )
    assert states["route_batch"] == "failed"
    assert not (e2e_home / "data" / "citizen_requests" / "accepted").exists()  # created only for a passed batch
    # the policy's own file is copied to quarantine/ and stays where the next scheduled run reads it
    data = e2e_home / "data" / "citizen_requests"
    assert len(list((data / "quarantine").glob("*__inference_batch.csv"))) == 1
    assert (data / "inference_batch.csv").is_file()

    # The refresh DAG on clean data: nothing is trained, no human is asked, the suspended version stays.
    register("citizen_requests", "training", "citizen_requests/training.csv")
    states = _states(_dag("citizen_requests_model_refresh").test())
    assert states["kill_switch"] == "failed"
    assert states["verify_integrity"] == "upstream_failed"
    assert states["train_candidate"] == "upstream_failed"
    assert states["gate"] == "failed"
    assert states["human_review"] == "upstream_failed"
    assert states["publish"] == "upstream_failed"
    state = ledger_state("citizen_requests")
    assert state["versions"] == [(1, "production", "claire")]
    refreshes = [r for r in state["runs"] if r[0] == "citizen_requests_model_refresh"]
    assert len(refreshes) == 1
    assert refreshes[0][1] == "blocked"
    assert refreshes[0][2] == ["kill_switch"]


def test_drifted_inference_batch_is_quarantined_with_an_incident(e2e_home) -> None:

    _seed_production_version()
    register("citizen_requests", "inference", "citizen_requests/inference_batch__drifted.csv")
    dag_run = _dag("citizen_requests_inference_guardrails").test(
        run_conf={"batch_file": "citizen_requests/inference_batch__drifted.csv"}
    )
    states = _states(dag_run)
    assert states["verify_integrity"] == "success"
    assert states["scan_personal_data"] == "success"
    assert states["check_drift"] == "success"  # the verdict is recorded; route_batch decides on every verdict
    assert states["route_batch"] == "failed"
    quarantined = list((e2e_home / "data" / "citizen_requests" / "quarantine").glob("*inference_batch__drifted.csv"))
    assert len(quarantined) == 1
    # a delivered batch is moved: it leaves the landing folder, so nothing picks it up again
    assert not (e2e_home / "data" / "citizen_requests" / "inference_batch__drifted.csv").exists()
    assert not (e2e_home / "data" / "citizen_requests" / "accepted").exists()
    state = ledger_state("citizen_requests")
    inference_runs = [r for r in state["runs"] if r[0] == "citizen_requests_inference_guardrails"]
    assert inference_runs[-1][1] == "quarantined"
    assert inference_runs[-1][2] == ["drift"]
    assert any(i[0] == "availability" for i in state["incidents"])


def test_clean_inference_batch_is_passed_on_and_scored_by_the_production_model(e2e_home) -> None:
    import pandas as pd
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from charter_airflow.batch_routing import accepted_batch_asset_uri
    from charter_airflow.runtime import load_policy
    from charter_guardrails.ledger.models_predictions import PredictionBatch
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    from tests.published_model import publish, train

    policy = load_policy("citizen_requests")
    data = e2e_home / "data" / "citizen_requests"
    publish(policy, train(policy, data / "training.csv", e2e_home / "candidate"))
    register("citizen_requests", "inference", "citizen_requests/inference_batch.csv")
    dag_run = _dag("citizen_requests_inference_guardrails").test()
    states = _states(dag_run)
    assert all(state == "success" for state in states.values()), states
    accepted = data / "accepted" / f"{dag_run.run_id.replace(':', '_')}__inference_batch.csv"  # named by its run
    assert sorted(p.name for p in (data / "accepted").iterdir()) == [
        accepted.name,
        accepted.name.replace(".csv", ".predictions.parquet"),
    ]
    runs = [r for r in ledger_state("citizen_requests")["runs"] if r[0] == "citizen_requests_inference_guardrails"]
    assert runs[-1][1] == "passed"

    # Scored by v1: one prediction per batch row, the run named, the distribution in the ledger.
    predictions = accepted.with_name(accepted.name.replace(".csv", ".predictions.parquet"))
    written = pd.read_parquet(predictions)
    assert len(written) == len(pd.read_csv(data / "inference_batch.csv", sep=";")) > 0
    assert set(written["run_id"]) == {dag_run.run_id}
    assert "request_id" not in written.columns
    assert "message" not in written.columns
    with ledger_session() as session:
        [row] = session.scalars(select(PredictionBatch).where(PredictionBatch.run_id == dag_run.run_id)).all()
        assert (row.status, row.model_version, row.rows) == ("scored", 1, len(written))
        assert sum(row.distribution["counts"].values()) == len(written)
    with create_session() as session:
        extras = [
            dict(e.extra or {})
            for e in session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetModel.uri == accepted_batch_asset_uri("citizen_requests"))
            )
        ]
    [extra] = [e for e in extras if e.get("run_id") == dag_run.run_id]
    assert extra["batch"] == f"citizen_requests/accepted/{accepted.name}"
    assert extra["predictions"] == f"citizen_requests/accepted/{predictions.name}"
    assert extra["model_version"] == 1
    assert extra["not_scored"] is None

    # The same batch name delivered again: a second accepted copy and its predictions, the first run's untouched.
    first = {p.name: p.read_bytes() for p in (data / "accepted").iterdir()}
    again = _dag("citizen_requests_inference_guardrails").test()
    assert again.run_id != dag_run.run_id
    assert all(state == "success" for state in _states(again).values()), _states(again)
    second = f"{again.run_id.replace(':', '_')}__inference_batch"
    assert sorted(p.name for p in (data / "accepted").iterdir()) == sorted(
        [*first, f"{second}.csv", f"{second}.predictions.parquet"]
    )
    assert {name: (data / "accepted" / name).read_bytes() for name in first} == first
