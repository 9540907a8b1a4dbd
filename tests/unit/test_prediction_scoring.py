"""An accepted inference batch scored by the production model; its prediction distribution in the ledger.

Real models: each use case's candidate is trained once per module by the project's own ``train_candidate`` on the
sample data, then published in each test's ledger (SQLite and PostgreSQL) with its model card and AI label, the
way ``publish`` does.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from charter_demo.sample_data import generate
from charter_guardrails.checks.proportionality import model_input_columns
from charter_guardrails.core.policy import UseCasePolicy, policy_files
from charter_guardrails.core.policy_models import DatasetRole
from charter_guardrails.core.settings import get_settings
from charter_guardrails.decision import prediction_stats
from charter_guardrails.decision.model_registry import suspend
from charter_guardrails.decision.scoring import NOT_SCORED, SCORED, predictions_path, score_batch
from charter_guardrails.ledger.audit import verify_chain
from charter_guardrails.ledger.models_predictions import PredictionBatch
from charter_guardrails.ledger.store import ledger_session
from charter_guardrails.readers.files import apply_types, read_dataset
from charter_guardrails.refresh.artifacts import file_sha256
from charter_guardrails.refresh.training import TrainedModel
from sqlalchemy import select, text

from tests.published_model import publish, train

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
CITIZEN, WASTE = "citizen_requests", "waste_tonnage"
#: What a predictions file holds; no input column.
PREDICTION_COLUMNS = ["row", "prediction", "probability", "model_version", "ai_label_id", "run_id"]


@pytest.fixture(scope="module")
def all_policies() -> dict[str, UseCasePolicy]:
    return {p.id: p for p in (UseCasePolicy.from_file(f) for f in policy_files())}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, all_policies: dict[str, UseCasePolicy]) -> Path:
    root = tmp_path_factory.mktemp("scoring_data")
    generate(root, all_policies, rows=800, as_of=AS_OF)
    return root


@pytest.fixture(scope="module")
def trained(
    all_policies: dict[str, UseCasePolicy], sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, TrainedModel]:
    return {
        use_case: train(
            all_policies[use_case],
            sample / use_case / "training.csv",
            tmp_path_factory.mktemp(f"model_{use_case}"),
            as_of=AS_OF,
        )
        for use_case in (CITIZEN, WASTE)
    }


def _accept(sample: Path, use_case: str, name: str, as_name: str | None = None) -> Path:
    target = get_settings().data_dir / use_case / "accepted" / (as_name or name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample / use_case / name, target)
    return target


def _score(policy: UseCasePolicy, batch: Path, run_id: str) -> Any:
    with ledger_session() as session:
        return score_batch(session, policy, batch, dag_id=f"{policy.id}_inference_guardrails", run_id=run_id)


def _rows() -> list[PredictionBatch]:
    with ledger_session() as session:
        rows = list(session.scalars(select(PredictionBatch).order_by(PredictionBatch.id)))
        session.expunge_all()
        return rows


def test_an_accepted_batch_is_scored_row_by_row_without_any_input_column(
    ledger_url: str, all_policies: dict[str, UseCasePolicy], sample: Path, trained: dict[str, TrainedModel]
) -> None:
    import pandas as pd

    policy = all_policies[CITIZEN]
    label = publish(policy, trained[CITIZEN])
    batch = _accept(sample, CITIZEN, "inference_batch.csv")
    outcome = _score(policy, batch, "asset_triggered__1")

    assert outcome.scored, outcome.reason
    assert outcome.predictions == predictions_path(batch) == batch.with_name("inference_batch.predictions.parquet")
    written = pd.read_parquet(outcome.predictions)
    dataset = policy.datasets_with_role(DatasetRole.INFERENCE)[0]
    inputs, _ = apply_types(read_dataset(dataset, batch), dataset)
    assert list(written.columns) == PREDICTION_COLUMNS
    assert written["row"].tolist() == list(range(1, len(inputs) + 1))
    expected = trained[CITIZEN].pipeline.predict(inputs[model_input_columns(policy)])
    assert written["prediction"].tolist() == [str(v) for v in expected]
    assert written["probability"].between(0, 1).all()
    assert set(written["model_version"]) == {1}
    assert set(written["ai_label_id"]) == {file_sha256(label)} == {outcome.ai_label_id}
    assert set(written["run_id"]) == {"asset_triggered__1"}
    # no input value: the identifiers and messages of the batch appear nowhere in the file
    cells = set(written.astype(str).to_numpy().ravel())
    assert not cells & set(inputs["request_id"].astype(str))
    assert not cells & set(inputs["message"].astype(str))

    distribution = outcome.distribution
    assert prediction_stats.total(distribution) == outcome.rows == len(inputs)
    assert distribution["counts"] == written["prediction"].value_counts().sort_index().to_dict()
    assert sum(distribution["shares"].values()) == pytest.approx(1.0, abs=1e-5)
    assert distribution["probability"]["class"] == policy.equity.positive_label
    assert sum(distribution["probability"]["counts"]) == len(inputs)
    assert set(outcome.summary()) == {"scored", "rows", "model_version", "distribution", "drift"}
    assert outcome.drift is None  # the first scored batch of the use case

    [row] = _rows()
    assert (row.status, row.model_version, row.rows, row.drift, row.previous_id) == (SCORED, 1, len(inputs), None, None)
    assert (row.batch, row.predictions) == (
        f"{CITIZEN}/accepted/inference_batch.csv",
        f"{CITIZEN}/accepted/inference_batch.predictions.parquet",
    )
    with ledger_session() as session:
        assert verify_chain(session).ok
        session.execute(text("UPDATE prediction_batches SET drift = 0.5"))  # edited behind the ledger's back
    with ledger_session() as session:
        assert [p.subject for p in verify_chain(session).problems] == ["prediction_batches#1"]


def test_each_batch_drift_is_measured_against_the_previous_scored_batch(
    ledger_url: str, all_policies: dict[str, UseCasePolicy], sample: Path, trained: dict[str, TrainedModel]
) -> None:
    policy = all_policies[CITIZEN]
    publish(policy, trained[CITIZEN])
    first = _score(policy, _accept(sample, CITIZEN, "inference_batch.csv"), "run_1")
    drifted = _score(policy, _accept(sample, CITIZEN, "inference_batch__drifted.csv"), "run_2")
    again = _score(policy, _accept(sample, CITIZEN, "inference_batch.csv"), "run_3")
    retried = _score(policy, _accept(sample, CITIZEN, "inference_batch__drifted.csv"), "run_2")

    assert drifted.drift == prediction_stats.drift(first.distribution, drifted.distribution)
    assert drifted.drift is not None
    assert drifted.drift > 0
    assert again.drift == prediction_stats.drift(drifted.distribution, again.distribution) == drifted.drift
    assert retried.record_id == drifted.record_id  # a retried task gets its record back, scored once
    rows = _rows()
    assert [(r.run_id, r.previous_id) for r in rows] == [("run_1", None), ("run_2", rows[0].id), ("run_3", rows[1].id)]
    with ledger_session() as session:
        assert verify_chain(session).ok


def test_a_regressor_batch_gets_a_histogram_on_the_edges_of_the_first_batch(
    ledger_url: str, all_policies: dict[str, UseCasePolicy], sample: Path, trained: dict[str, TrainedModel]
) -> None:
    import pandas as pd

    policy = all_policies[WASTE]
    publish(policy, trained[WASTE])
    batch = _accept(sample, WASTE, "inference_batch.csv")
    first = _score(policy, batch, "run_1")
    second = _score(policy, _accept(sample, WASTE, "training.csv", as_name="inference_batch__later.csv"), "run_2")

    written = pd.read_parquet(first.predictions)
    assert list(written.columns) == [c for c in PREDICTION_COLUMNS if c != "probability"]
    edges = first.distribution["edges"]
    assert edges[0] == pytest.approx(written["prediction"].min())
    assert edges[-1] == pytest.approx(written["prediction"].max())
    assert sum(first.distribution["counts"]) == first.rows == len(written)
    assert second.distribution["edges"] == edges  # values outside them count in the outer bins
    assert sum(second.distribution["counts"]) == second.rows
    assert second.drift == prediction_stats.drift(first.distribution, second.distribution)
    assert second.drift is not None


def test_without_a_production_model_the_batch_is_accepted_but_not_scored(
    ledger_url: str, all_policies: dict[str, UseCasePolicy], sample: Path
) -> None:
    policy = all_policies[CITIZEN]
    batch = _accept(sample, CITIZEN, "inference_batch.csv")
    outcome = _score(policy, batch, "run_1")
    assert not outcome.scored
    assert outcome.reason is not None
    assert "no production model" in outcome.reason
    assert outcome.summary() == {"scored": False, "reason": outcome.reason, "model_version": None}
    assert not predictions_path(batch).exists()
    [row] = _rows()
    assert (row.status, row.rows, row.distribution, row.predictions) == (NOT_SCORED, 0, {}, None)


def test_with_the_kill_switch_on_the_batch_is_not_scored(
    ledger_url: str, all_policies: dict[str, UseCasePolicy], sample: Path, trained: dict[str, TrainedModel]
) -> None:
    policy = all_policies[CITIZEN]
    publish(policy, trained[CITIZEN])
    with ledger_session() as session:
        suspend(session, CITIZEN, actor="dpo", reason="signalement de la médiation")
    batch = _accept(sample, CITIZEN, "inference_batch.csv")
    outcome = _score(policy, batch, "run_1")
    assert not outcome.scored
    assert outcome.reason is not None
    assert "kill switch is on" in outcome.reason
    assert "médiation" not in outcome.reason
    assert outcome.model_version == 1  # the suspended version, recorded with the reason
    assert not predictions_path(batch).exists()
    assert [r.status for r in _rows()] == [NOT_SCORED]


def test_a_changed_artifact_or_missing_inputs_are_not_scored(
    ledger_url: str, all_policies: dict[str, UseCasePolicy], sample: Path, trained: dict[str, TrainedModel]
) -> None:
    import pandas as pd

    policy = all_policies[CITIZEN]
    publish(policy, trained[CITIZEN])
    batch = _accept(sample, CITIZEN, "inference_batch.csv")
    narrow = batch.with_name("inference_batch__narrow.parquet")
    pd.read_csv(batch, sep=";").drop(columns=["channel"]).to_parquet(narrow, index=False)
    missing = _score(policy, narrow, "run_1")
    assert not missing.scored
    assert missing.reason is not None
    assert "lacks the model inputs channel" in missing.reason

    artifact = get_settings().models_dir / CITIZEN / "v1.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    changed = _score(policy, batch, "run_2")
    assert not changed.scored
    assert changed.reason is not None
    assert "differs from its recorded SHA-256" in changed.reason
    assert not predictions_path(batch).exists()
    assert [r.status for r in _rows()] == [NOT_SCORED, NOT_SCORED]


def test_drift_is_zero_for_the_same_shares_and_one_for_disjoint_classes() -> None:
    same = prediction_stats.class_distribution(["a", "b", "b"], None, None)
    double = prediction_stats.class_distribution(["a", "a", "b", "b", "b", "b"], None, None)
    assert prediction_stats.drift(same, double) == 0.0
    other = prediction_stats.class_distribution(["c"], None, None)
    assert prediction_stats.drift(same, other) == 1.0
    values = prediction_stats.value_distribution([1.0, 2.0, 3.0], None)
    assert prediction_stats.drift(same, values) is None  # different kinds are not compared
    later = prediction_stats.value_distribution([-5.0, 2.0, 50.0], values)
    assert later["counts"][0] == 1
    assert later["counts"][-1] == 1
    assert sum(later["counts"]) == 3
