"""A team's own model (``model.trainer``): trained in a child process on the declared inputs only, then saved,
hashed and evaluated like the built-in pipeline; each way the trainer can fail is a failing ``training`` verdict.

The trainers live in a module this test writes to a temporary folder put on ``sys.path``, as a team's package
would be installed on the workers. Real scikit-learn, fairlearn and codecarbon (offline); no mocks.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import yaml
from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.errors import PolicyError
from charter_guardrails.core.evidence import TrainingEvidence
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.results import Verdict
from charter_guardrails.refresh.artifacts import file_sha256
from charter_guardrails.refresh.evaluation import evaluate_candidate
from charter_guardrails.refresh.evaluation_checks import check_fairness, check_performance
from charter_guardrails.refresh.footprint import check_footprint
from charter_guardrails.refresh.training import load_trained_model, train_candidate
from charter_guardrails.refresh.training_check import check_training, first_line

ROOT = Path(__file__).resolve().parents[2]
CITIZEN = ROOT / "include" / "policies" / "citizen_requests.yaml"
MODULE = "team_routing_model"
#: The declared model inputs of citizen_requests and its label.
DECLARED = ["message", "channel"]
LABEL = "category"

TRAINERS = """
import json
import os
import time
from pathlib import Path

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC

SEEN = Path(__file__).with_name("seen.json")


def _features():
    return ColumnTransformer(
        [("words", CountVectorizer(), "message"), ("channel", OneHotEncoder(handle_unknown="ignore"), ["channel"])]
    )


def train(frame, *, features, label, random_state):
    SEEN.write_text(json.dumps({"columns": list(frame.columns), "rows": len(frame), "features": features}))
    model = Pipeline([("features", _features()), ("forest", RandomForestClassifier(30, random_state=random_state))])
    return model.fit(frame[features], frame[label])


def raises(frame, *, features, label, random_state):
    raise ValueError("could not convert string to float: 'Jean Dupont'\\nrow 12: 'jean@example.org'")


def reads_undeclared(frame, *, features, label, random_state):
    return frame["arrondissement"]


def reads_undeclared_among_others(frame, *, features, label, random_state):
    return frame[["message", "age_band"]]


def no_predict(frame, *, features, label, random_state):
    return {"weights": [1, 2, 3]}


def no_proba(frame, *, features, label, random_state):
    return Pipeline([("features", _features()), ("svm", LinearSVC())]).fit(frame[features], frame[label])


class Holder:
    # A model holding what cannot be saved (an open connection, a GPU handle). Not a lambda: once dill is imported
    # in the process (Airflow imports it), joblib's pure-Python pickler saves lambdas too.
    def __init__(self, model):
        self.model = model

    def __reduce__(self):
        raise TypeError("a Holder keeps an open handle and cannot be pickled")

    def predict(self, frame):
        return self.model.predict(frame)

    def predict_proba(self, frame):
        return self.model.predict_proba(frame)


def unpicklable(frame, *, features, label, random_state):
    return Holder(train(frame, features=features, label=label, random_state=random_state))


def slow(frame, *, features, label, random_state):
    time.sleep(60)


def dies(frame, *, features, label, random_state):
    os._exit(3)
"""


@pytest.fixture(scope="module")
def trainers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The team's module on ``sys.path``; its trainers record what they received in ``seen.json``."""
    folder = tmp_path_factory.mktemp("team_package")
    (folder / f"{MODULE}.py").write_text(textwrap.dedent(TRAINERS), encoding="utf-8")
    (folder / "team_broken_model.py").write_text("raise RuntimeError(\"config 'Jean Dupont' missing\")\n")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop(MODULE, None)
    sys.modules.pop("team_broken_model", None)


@pytest.fixture(scope="module")
def base_policy() -> UseCasePolicy:
    return UseCasePolicy.from_file(CITIZEN)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """A minimised citizen_requests frame: model inputs, label, the equity groups and a timestamp."""
    words = {"voirie": "trou chaussée nid de poule", "proprete": "déchets dépôt sauvage", "eclairage": "lampadaire"}
    rows = []
    for i in range(160):
        category = list(words)[i % 3]
        rows.append(
            {
                "received_at": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=i),
                "message": f"{words[category]} rue {i % 7}",
                "arrondissement": f"1320{i % 4 + 1}",
                "channel": ["web", "telephone", "guichet"][i % 5 % 3],
                "age_band": ["18-29", "30-59", "60+"][i % 2],
                LABEL: category,
            }
        )
    return pd.DataFrame(rows)


def _with_trainer(policy: UseCasePolicy, trainer: str, timeout_s: float = 120) -> UseCasePolicy:
    model = policy.model.model_copy(update={"trainer": trainer, "training_timeout": timedelta(seconds=timeout_s)})
    return policy.model_copy(update={"model": model})


def _failed(policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path) -> tuple[str, TrainingEvidence]:
    outcome = check_training(train_candidate, policy, frame, artifact_dir=tmp_path / "candidate")
    assert outcome.model is None
    assert outcome.result.check == CheckName.TRAINING
    assert outcome.result.verdict is Verdict.FAIL
    assert outcome.result.engagements == CATALOGUE[CheckName.TRAINING].engagement_ids()
    evidence = outcome.result.typed_evidence()
    assert isinstance(evidence, TrainingEvidence)
    assert evidence.trainer == policy.model.trainer
    assert outcome.result.summary_in("fr") != outcome.result.summary, "the verdict reads in French too"
    return outcome.result.summary, evidence


def test_a_team_pipeline_trains_saves_hashes_and_is_evaluated_like_the_built_in_one(
    trainers: Path, base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path
) -> None:
    policy = _with_trainer(base_policy, f"{MODULE}:train")
    outcome = check_training(train_candidate, policy, frame, artifact_dir=tmp_path / "candidate")

    assert outcome.result.verdict is Verdict.PASS, outcome.result.summary
    model = outcome.model
    assert model is not None
    assert f"{MODULE}:train" in outcome.result.summary
    evidence = outcome.result.typed_evidence()
    assert isinstance(evidence, TrainingEvidence)
    assert (evidence.outcome, evidence.estimator, evidence.train_rows) == ("trained", "Pipeline", model.train_rows)
    # the trainer saw the declared inputs and the label of the training rows only, never the held-out rows
    seen = json.loads((trainers / "seen.json").read_text(encoding="utf-8"))
    assert sorted(seen["columns"]) == sorted([*DECLARED, LABEL])
    assert seen["features"] == DECLARED
    assert seen["rows"] == model.train_rows == len(frame) - model.test_rows
    # saved and hashed like the built-in model; reloaded by its hash in the next task
    assert model.artifact_sha256 == file_sha256(model.artifact_path) == evidence.artifact_sha256
    assert model.energy.kwh >= 0
    assert model.energy.duration_s > 0
    assert model.energy.method
    assert model.classes == ["eclairage", "proprete", "voirie"]
    reloaded = load_trained_model(outcome.candidate)
    assert reloaded.trainer == f"{MODULE}:train"
    assert type(reloaded.pipeline.model).__name__ == "Pipeline", "the team's pipeline, behind the declared inputs"
    # a frame with every column predicts: the model reads only the declared inputs
    assert list(reloaded.predict(frame.head(3))) == list(frame[LABEL].head(3))
    report = evaluate_candidate(policy, reloaded)
    assert report.reference == "baseline"
    assert report.holdout_rows == model.test_rows
    assert report.candidate_score > report.baseline_score
    performance, fairness = check_performance(policy, report), check_fairness(policy, report)
    assert performance.check == CheckName.PERFORMANCE
    assert performance.verdict is Verdict.PASS
    assert fairness.check == CheckName.FAIRNESS
    assert fairness.evidence["holdout_rows"] == model.test_rows
    assert {row["column"] for row in fairness.evidence["table"]} == {"arrondissement", "age_band"}
    assert check_footprint(policy, report.gain, model.energy).check == CheckName.FOOTPRINT


def _train_in_pool(policy: UseCasePolicy, frame: pd.DataFrame, artifact_dir: str) -> tuple[bool, str, str]:
    import multiprocessing

    outcome = check_training(train_candidate, policy, frame, artifact_dir=Path(artifact_dir))
    return multiprocessing.current_process().daemon, outcome.result.verdict.value, outcome.result.summary


def test_a_trainer_runs_from_a_celery_pool_process(
    trainers: Path, base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path
) -> None:
    """Celery runs tasks in billiard pool processes, which multiprocessing marks daemonic: the trainer's child
    process must start there too, and the flag stays as it was."""
    import billiard

    policy = _with_trainer(base_policy, f"{MODULE}:train")
    with billiard.get_context("fork").Pool(1) as pool:
        daemonic, verdict, summary = pool.apply(_train_in_pool, (policy, frame, str(tmp_path / "candidate")))
    assert daemonic is True
    assert verdict == "pass", summary


def test_the_built_in_pipeline_records_a_passing_training_result(
    base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path
) -> None:
    outcome = check_training(train_candidate, base_policy, frame, artifact_dir=tmp_path / "candidate")
    assert outcome.result.verdict is Verdict.PASS
    assert outcome.result.evidence["trainer"] == "built-in"
    assert outcome.candidate["artifact_sha256"] == outcome.result.evidence["artifact_sha256"]
    assert "built-in text_classifier pipeline" in outcome.result.summary


@pytest.mark.parametrize(
    ("trainer", "expected"),
    [
        ("team_model_not_installed:train", "module team_model_not_installed is not installed"),
        (f"{MODULE}:no_such_function", f"module {MODULE} has no function no_such_function"),
    ],
)
def test_a_trainer_that_cannot_be_imported_fails(
    trainers: Path, base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path, trainer: str, expected: str
) -> None:
    summary, evidence = _failed(_with_trainer(base_policy, trainer), frame, tmp_path)
    assert evidence.outcome == "import_error"
    assert expected in summary
    assert "check model.trainer" in summary


def test_a_trainer_that_raises_fails_with_the_exception_type_and_no_data_value(
    trainers: Path, base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path
) -> None:
    summary, evidence = _failed(_with_trainer(base_policy, f"{MODULE}:raises"), frame, tmp_path)
    assert evidence.outcome == "raised"
    assert evidence.error_type == "ValueError"
    assert evidence.error_first_line == "could not convert string to float: '…'"
    assert "raised ValueError while training: could not convert string to float: '…'" in summary
    for value in ("Jean", "jean@", "row 12"):
        assert value not in summary


def test_unquoted_personal_values_in_a_trainers_message_are_masked() -> None:
    line = first_line(ValueError("row 12 of jeanne.dupontel@example.fr, tel 06 12 34 56 78: bad\nsecond line"))
    assert "dupontel" not in line
    assert "34 56" not in line
    assert line.startswith("row 12 of j***@***, tel 06")


def test_a_module_that_raises_when_imported_fails_without_its_values(
    trainers: Path, base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path
) -> None:
    summary, evidence = _failed(_with_trainer(base_policy, "team_broken_model:train"), frame, tmp_path)
    assert (evidence.outcome, evidence.error_type) == ("raised", "RuntimeError")
    assert "raised RuntimeError while its module was imported: config '…' missing" in summary
    assert "Jean" not in summary


@pytest.mark.parametrize(
    ("trainer", "column"), [("reads_undeclared", "arrondissement"), ("reads_undeclared_among_others", "age_band")]
)
def test_a_trainer_that_reads_an_undeclared_column_fails_naming_the_column(
    trainers: Path, base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path, trainer: str, column: str
) -> None:
    summary, evidence = _failed(_with_trainer(base_policy, f"{MODULE}:{trainer}"), frame, tmp_path)
    assert (evidence.outcome, evidence.column) == ("undeclared_column", column)
    assert f"asked for the column {column}," in summary
    assert "declared model inputs message, channel and the label category" in summary


@pytest.mark.parametrize(
    ("trainer", "estimator", "missing"),
    [("no_predict", "dict", ["predict", "predict_proba"]), ("no_proba", "Pipeline", ["predict_proba"])],
)
def test_a_result_without_predict_or_predict_proba_fails(
    trainers: Path,
    base_policy: UseCasePolicy,
    frame: pd.DataFrame,
    tmp_path: Path,
    trainer: str,
    estimator: str,
    missing: list[str],
) -> None:
    summary, evidence = _failed(_with_trainer(base_policy, f"{MODULE}:{trainer}"), frame, tmp_path)
    assert (evidence.outcome, evidence.estimator, evidence.missing_methods) == ("bad_result", estimator, missing)
    assert f"returned a {estimator} without {', '.join(missing)}" in summary


def test_a_model_that_does_not_pickle_fails(
    trainers: Path, base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path
) -> None:
    summary, evidence = _failed(_with_trainer(base_policy, f"{MODULE}:unpicklable"), frame, tmp_path)
    assert (evidence.outcome, evidence.estimator) == ("not_picklable", "Holder"), summary
    assert "does not pickle with joblib" in summary
    assert not list((tmp_path / "candidate").glob("*.joblib*")), "no half-written artifact is left"


def test_a_trainer_past_its_time_limit_is_stopped_and_fails(
    trainers: Path, base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path
) -> None:
    import time

    started = time.monotonic()
    summary, evidence = _failed(_with_trainer(base_policy, f"{MODULE}:slow", timeout_s=2), frame, tmp_path)
    assert time.monotonic() - started < 30, "the sleeping child was killed, not waited for"
    assert (evidence.outcome, evidence.timeout_s) == ("timed_out", 2.0)
    assert "stopped after its time limit of 2 s (model.training_timeout)" in summary


def test_a_trainer_whose_process_dies_fails(
    trainers: Path, base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path
) -> None:
    summary, evidence = _failed(_with_trainer(base_policy, f"{MODULE}:dies"), frame, tmp_path)
    assert (evidence.outcome, evidence.exit_code) == ("crashed", 3)
    assert "ended without a result (exit code 3" in summary


def test_the_training_task_records_the_verdict_then_fails_and_the_gate_is_blocked(
    ledger_url: str, trainers: Path, base_policy: UseCasePolicy, frame: pd.DataFrame, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from charter_airflow.dag_factory import REFRESH_STEPS
    from charter_airflow.guardrail_tasks import run_step
    from charter_guardrails.decision.gate import REFRESH_CHECKS, decide
    from charter_guardrails.decision.review_records import candidate_of_run
    from charter_guardrails.ledger.models import CheckRun
    from charter_guardrails.ledger.store import ledger_session, results_for_run
    from sqlalchemy import select

    minimised = tmp_path / "training.minimised.parquet"
    frame.to_parquet(minimised, index=False)
    step = {s.task_id: s for s in REFRESH_STEPS}["train_candidate"]

    def results(run_id: str) -> list[Any]:
        with ledger_session() as session:
            run = session.scalars(select(CheckRun).where(CheckRun.run_id == run_id)).one()
            return results_for_run(session, run)

    failing = {"dag_run": SimpleNamespace(dag_id="citizen_requests_model_refresh", run_id="manual__team_raises")}
    with pytest.raises(AirflowFailException, match=r"guardrail training failed .*raised ValueError while training"):
        run_step(step, policy=_with_trainer(base_policy, f"{MODULE}:raises"), context=failing, inputs=(str(minimised),))
    (recorded,) = results("manual__team_raises")
    assert (recorded.check, recorded.verdict) == (CheckName.TRAINING, Verdict.FAIL)
    decision = decide([recorded], REFRESH_CHECKS)
    assert decision.blocked
    assert "training" in decision.failed
    with ledger_session() as session:
        assert candidate_of_run(session, "citizen_requests", "manual__team_raises") is None

    passing = {"dag_run": SimpleNamespace(dag_id="citizen_requests_model_refresh", run_id="manual__team_trains")}
    policy = _with_trainer(base_policy, f"{MODULE}:train")
    candidate = run_step(step, policy=policy, context=passing, inputs=(str(minimised),))
    assert candidate["trainer"] == f"{MODULE}:train"
    (recorded,) = results("manual__team_trains")
    assert (recorded.check, recorded.verdict) == (CheckName.TRAINING, Verdict.PASS)
    with ledger_session() as session:
        stored = candidate_of_run(session, "citizen_requests", "manual__team_trains")
    assert stored is not None
    assert stored["artifact_sha256"] == candidate["artifact_sha256"]


def _policy_file(tmp_path: Path, **model: Any) -> Path:
    data = yaml.safe_load(CITIZEN.read_text(encoding="utf-8"))
    data["model"].update(model)
    path = tmp_path / "citizen_requests.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_trainer_and_training_timeout_validate_in_the_policy(tmp_path: Path) -> None:
    policy = UseCasePolicy.from_file(_policy_file(tmp_path, trainer="team.models:train", training_timeout="PT30M"))
    assert policy.model.trainer == "team.models:train"
    assert policy.model.training_timeout == timedelta(minutes=30)
    assert UseCasePolicy.from_file(_policy_file(tmp_path, training_timeout=90)).model.training_timeout.seconds == 90
    assert UseCasePolicy.from_file(CITIZEN).model.training_timeout == timedelta(hours=1)
    # the syntax is checked at load; the module is not imported (it is not installed here)
    assert UseCasePolicy.from_file(_policy_file(tmp_path, trainer="not_installed_pkg:fit")).model.trainer
    for bad in ("team.models.train", "team models:train", "team.models:", ":train", "team.models:train()"):
        with pytest.raises(PolicyError) as err:
            UseCasePolicy.from_file(_policy_file(tmp_path, trainer=bad))
        assert err.value.key == "model.trainer", bad
        assert err.value.reason == f"{bad!r} must name a function as package.module:function"
    for bad_timeout in ("PT0S", -5, "one hour"):
        with pytest.raises(PolicyError) as err:
            UseCasePolicy.from_file(_policy_file(tmp_path, training_timeout=bad_timeout))
        assert err.value.key == "model.training_timeout", bad_timeout
