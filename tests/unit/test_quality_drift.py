"""Drift against the stored training profile and representativeness of training data, on files and on
SQL tables (SQLite and PostgreSQL), with the CLI and the Airflow task steps persisting to the ledger."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from charter_guardrails.checks.quality.checks import drift_of_file, profile_training, representativeness_of_file
from charter_guardrails.checks.quality.drift import (
    build_reference_profile,
    check_drift,
    load_profile,
    profile_path,
    psi,
)
from charter_guardrails.checks.quality.representativeness import check_representativeness, load_reference, wilson
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.policy import UseCasePolicy, policy_files
from charter_guardrails.core.results import Verdict
from charter_guardrails.readers.files import apply_types, read_dataset, read_sql_table

PG_ADMIN_URL = os.environ.get("CHARTER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def policies() -> dict[str, UseCasePolicy]:
    return {p.id: p for p in (UseCasePolicy.from_file(f) for f in policy_files())}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, policies: dict[str, UseCasePolicy]) -> Path:
    from charter_demo.sample_data import generate

    folder = tmp_path_factory.mktemp("drift_data")
    generate(folder, policies)
    return folder


def _typed(policy: UseCasePolicy, dataset: str, path: Path) -> Any:
    ds = policy.dataset(dataset)
    return apply_types(read_dataset(ds, path), ds)[0]


# -- drift ------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_case", ["citizen_requests", "waste_tonnage"])
def test_clean_batch_passes_and_drifted_batch_fails(
    use_case: str, policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path
) -> None:
    policy = policies[use_case]
    stored = profile_training(policy, sample / use_case / "training.csv")
    assert stored == profile_path(use_case, "training")
    assert stored.is_file()
    clean = drift_of_file(policy, sample / use_case / "inference_batch.csv", reference=stored)
    assert clean.verdict is Verdict.PASS, clean.summary
    assert clean.check == "drift"
    assert clean.engagements == ["equite.2", "maitrise_humaine.1"]
    drifted = drift_of_file(policy, sample / use_case / "inference_batch__drifted.csv", reference=stored)
    assert drifted.verdict is Verdict.FAIL
    features = drifted.evidence["features"]
    expected = {
        "citizen_requests": {"channel", "arrondissement", "message"},
        "waste_tonnage": {"pluie_mm", "population"},
    }[use_case]
    assert set(drifted.evidence["drifted"]) == expected
    for name in expected:  # stored per feature with its statistics
        assert features[name]["drifted"]
        assert features[name]["reasons"]
    if use_case == "citizen_requests":
        assert features["message"]["oov_share"] > 0.3
        assert features["message"]["length_psi"] > 0.2
        assert features["channel"]["js_distance"] > 0.1
        assert features["channel"]["chi2_pvalue"] < 0.01
        assert not features["age_band"]["drifted"]
    else:
        assert features["pluie_mm"]["psi"] > 0.2
        assert features["pluie_mm"]["ks_pvalue"] < 1e-6


def test_profile_is_reused_without_the_training_data(
    policies: dict[str, UseCasePolicy], sample: Path, tmp_path: Path, charter_home: Path
) -> None:
    policy = policies["citizen_requests"]
    training = tmp_path / "training.csv"
    training.write_bytes((sample / "citizen_requests" / "training.csv").read_bytes())
    stored = profile_training(policy, training)
    training.unlink()  # the raw training data is gone: the stored profile is enough
    result = drift_of_file(policy, sample / "citizen_requests" / "inference_batch__drifted.csv", reference=stored)
    assert result.verdict is Verdict.FAIL
    assert result.evidence["reference"]["profile"] == str(stored)


def test_profile_holds_no_raw_personal_value(
    policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path
) -> None:
    policy = policies["citizen_requests"]
    training = sample / "citizen_requests" / "training.csv"
    text = json.dumps(build_reference_profile(policy, _typed(policy, "training", training)), ensure_ascii=False)
    raw = training.read_text(encoding="utf-8")
    emails = set(re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", raw))
    phones = set(re.findall(r"(?:\+33 |0)[67](?: ?\d\d){4}", raw))
    names = set(re.findall(r"Je suis (\w+) (\w+),", raw))
    ids = set(re.findall(r"DEM-\d{3}-\d{7}", raw))
    assert emails
    assert phones
    assert names
    assert ids
    for value in emails | phones | ids:
        assert value not in text
    for first, last in names:
        assert f'"{first.lower()}"' not in text
        assert f'"{last.lower()}"' not in text
        assert last not in text
    message = json.loads(text)["features"]["message"]
    assert message["vocabulary_sha256_16"]
    assert all(re.fullmatch(r"[0-9a-f]{16}", h) for h in message["vocabulary_sha256_16"])
    assert "request_id" not in json.loads(text)["features"]


def test_drift_on_sql_tables(
    data_url: str, policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path
) -> None:
    policy = policies["waste_tonnage"]
    profile = build_reference_profile(policy, _typed(policy, "training", sample / "waste_tonnage" / "training.csv"))
    for name, file in (("batch_clean", "inference_batch.csv"), ("batch_drifted", "inference_batch__drifted.csv")):
        _load_table(_typed(policy, "inference", sample / "waste_tonnage" / file), data_url, name)
    clean = check_drift(policy, _typed_sql(policy, "inference", "batch_clean", data_url), profile)
    drifted = check_drift(policy, _typed_sql(policy, "inference", "batch_drifted", data_url), profile)
    assert clean.verdict is Verdict.PASS, clean.summary
    assert drifted.verdict is Verdict.FAIL
    assert "pluie_mm" in drifted.evidence["drifted"]
    # In the database (GROUP BY, streamed): the same statistics, float for float, as the table read whole.
    from charter_guardrails.checks.quality.drift_stats import TableStats
    from sqlalchemy import create_engine

    engine = create_engine(data_url)
    try:
        for name, whole in (("batch_clean", clean), ("batch_drifted", drifted)):
            in_database = check_drift(policy, TableStats(engine, name), profile)
            assert in_database.verdict is whole.verdict
            assert in_database.evidence["features"] == whole.evidence["features"], name
            assert in_database.metrics == whole.metrics
    finally:
        engine.dispose()


def test_a_sql_inference_dataset_drifts_in_its_database(
    data_url: str, policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = policies["waste_tonnage"]
    stored = profile_training(policy, sample / "waste_tonnage" / "training.csv")
    _load_table(_typed(policy, "inference", sample / "waste_tonnage" / "inference_batch__drifted.csv"), data_url, "lot")
    monkeypatch.setenv("CHARTER_DATA_URL", data_url)
    raw = policy.model_dump(mode="json")
    inference = next(d for d in raw["datasets"] if d["role"] == "inference")
    inference.update({"format": "sql", "table": "lot", "path": None})
    on_table = UseCasePolicy.model_validate(raw)
    result = drift_of_file(on_table, reference=stored)
    assert result.verdict is Verdict.FAIL
    assert "pluie_mm" in result.evidence["drifted"]
    inference["table"] = "absent"
    missing = drift_of_file(UseCasePolicy.model_validate(raw), reference=stored)
    assert missing.verdict is Verdict.FAIL
    assert "missing" in missing.summary
    assert "table absent does not exist" in missing.summary


def test_drift_bad_input(policies: dict[str, UseCasePolicy], sample: Path, tmp_path: Path, charter_home: Path) -> None:
    policy = policies["waste_tonnage"]
    stored = profile_training(policy, sample / "waste_tonnage" / "training.csv")
    unreadable = drift_of_file(policy, tmp_path / "missing.csv", reference=stored)
    assert unreadable.verdict is Verdict.FAIL
    assert "missing" in unreadable.summary
    frame = _typed(policy, "inference", sample / "waste_tonnage" / "inference_batch.csv").drop(columns=["pluie_mm"])
    result = check_drift(policy, frame, load_profile(stored))
    assert result.verdict is Verdict.FAIL
    assert result.evidence["missing_features"] == ["pluie_mm"]
    with pytest.raises(ConfigError, match="no reference profile"):
        load_profile(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="belongs to use case"):
        check_drift(policies["citizen_requests"], frame, load_profile(stored))


def test_psi_is_zero_for_identical_and_grows_with_shift() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert 0 < psi([0.5, 0.5], [0.6, 0.4]) < psi([0.5, 0.5], [0.9, 0.1])


# -- representativeness -----------------------------------------------------------------------


def test_clean_training_is_representative(policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path) -> None:
    result = representativeness_of_file(policies["citizen_requests"], sample / "citizen_requests" / "training.csv")
    assert result.verdict is Verdict.PASS, result.summary
    assert result.engagements == ["equite.2"]
    arrondissements = result.evidence["group_columns"][0]
    assert arrondissements["column"] == "arrondissement"
    assert "INSEE" in arrondissements["reference_source"]
    assert len(arrondissements["groups"]) == 16
    assert all("gap_pp" in g for g in arrondissements["groups"].values())
    assert arrondissements["disparate_impact"]["positive_label"] == "voirie"


def test_biased_sample_fails_for_the_right_reasons(
    policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path
) -> None:
    result = representativeness_of_file(
        policies["citizen_requests"], sample / "citizen_requests" / "training__biased.csv"
    )
    assert result.verdict is Verdict.FAIL
    reasons = "\n".join(result.evidence["reasons"])
    assert result.evidence["data_gaps"] == ["arrondissement=13216"]
    assert "data gap, AI Act Art. 10(2)(h)" in reasons
    for over in ("13206", "13207", "13208"):
        assert f"arrondissement={over}:" in reasons
    assert "age_band=75+" in reasons
    assert "age_band=18-29" in reasons
    arrondissements = result.evidence["group_columns"][0]
    assert arrondissements["disparate_impact"]["point"] < 0.8
    assert "four-fifths rule" in reasons
    assert arrondissements["groups"]["13207"]["gap_pp"] > 5


def test_representativeness_on_sql_tables(
    data_url: str, policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path
) -> None:
    policy = policies["citizen_requests"]
    for name, file in (("train_clean", "training.csv"), ("train_biased", "training__biased.csv")):
        _load_table(_typed(policy, "training", sample / "citizen_requests" / file), data_url, name)
    assert (
        check_representativeness(policy, _typed_sql(policy, "training", "train_clean", data_url)).verdict
        is Verdict.PASS
    )
    biased = check_representativeness(policy, _typed_sql(policy, "training", "train_biased", data_url))
    assert biased.verdict is Verdict.FAIL
    assert biased.evidence["data_gaps"] == ["arrondissement=13216"]
    assert any("disparate_impact" in report for report in biased.evidence["group_columns"])
    # Counted by the database (GROUP BY): the same groups, shares, base rates and verdicts as the table read whole.
    from charter_guardrails.checks.quality.group_counts import TableGroups
    from sqlalchemy import create_engine

    engine = create_engine(data_url)
    try:
        whole = {
            "train_clean": check_representativeness(policy, _typed_sql(policy, "training", "train_clean", data_url))
        }
        whole["train_biased"] = biased
        for name, expected in whole.items():
            counted = check_representativeness(policy, TableGroups(engine, name))
            assert counted.verdict is expected.verdict
            assert counted.evidence == expected.evidence, name
            assert counted.metrics == expected.metrics
    finally:
        engine.dispose()


def test_a_sql_training_dataset_is_judged_on_counts_from_its_database(
    data_url: str, policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = policies["citizen_requests"]
    _load_table(_typed(policy, "training", sample / "citizen_requests" / "training__biased.csv"), data_url, "appris")
    monkeypatch.setenv("CHARTER_DATA_URL", data_url)
    raw = policy.model_dump(mode="json")
    training = next(d for d in raw["datasets"] if d["role"] == "training")
    training.update({"format": "sql", "table": "appris", "path": None})
    result = representativeness_of_file(UseCasePolicy.model_validate(raw))
    assert result.verdict is Verdict.FAIL
    assert result.evidence["data_gaps"] == ["arrondissement=13216"]
    training["table"] = "absent"
    missing = representativeness_of_file(UseCasePolicy.model_validate(raw))
    assert missing.verdict is Verdict.FAIL
    assert "table absent does not exist" in missing.summary


def test_min_group_size_and_reference_errors(
    policies: dict[str, UseCasePolicy], sample: Path, tmp_path: Path, charter_home: Path
) -> None:
    policy = policies["citizen_requests"]
    frame = _typed(policy, "training", sample / "citizen_requests" / "training.csv")
    import pandas as pd

    small = pd.concat([frame[frame["arrondissement"] != "13216"], frame[frame["arrondissement"] == "13216"].head(12)])
    result = check_representativeness(policy, small)
    assert result.verdict is Verdict.FAIL
    assert any("13216: 12 rows, fewer than the minimum 30" in r for r in result.evidence["reasons"])
    reference = load_reference("marseille_arrondissements.csv")
    assert abs(sum(reference.shares.values()) - 1) < 0.01
    assert "Source" in reference.source
    (tmp_path / "nosource.csv").write_text("group;population;share\na;1;1.0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="Source"):
        load_reference("nosource.csv", tmp_path)
    low, high = wilson(20, 100)
    assert low < 0.2 < high


# -- CLI and Airflow task steps, persisted in the ledger --------------------------------------


def test_cli_drift_and_representativeness(ledger_url: str, sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = sample / "citizen_requests"
    code = charter(
        [
            "drift",
            str(data / "inference_batch__drifted.csv"),
            "--reference",
            str(data / "training.csv"),
            "--policy",
            "citizen_requests",
            "--run-id",
            "cli_drift",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["check"] == "drift"
    assert Path(out["report_path"]).is_file()
    assert profile_path("citizen_requests", "training").is_file()  # the training file was profiled once and stored
    code = charter(
        [
            "drift",
            str(data / "inference_batch.csv"),
            "--reference",
            str(profile_path("citizen_requests", "training")),
            "--policy",
            "citizen_requests",
            "--run-id",
            "cli_drift_ok",
        ]
    )
    assert code == 0
    assert "drift PASS" in capsys.readouterr().out
    code = charter(
        [
            "representativeness",
            str(data / "training__biased.csv"),
            "--policy",
            "citizen_requests",
            "--run-id",
            "cli_rep",
        ]
    )
    human = capsys.readouterr().out
    assert code == 1
    assert "data gap" in human
    assert "report:" in human
    from charter_guardrails.ledger.models import CheckResultRecord, CheckRun
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        rows = {
            (r.run_id, r.check): r.verdict
            for r in session.execute(
                select(CheckRun.run_id, CheckResultRecord.check, CheckResultRecord.verdict).join(CheckResultRecord)
            )
        }
    assert rows == {
        ("cli_drift", "drift"): "fail",
        ("cli_drift_ok", "drift"): "pass",
        ("cli_rep", "representativeness"): "fail",
    }


def test_airflow_task_steps_persist_and_gate(
    ledger_url: str, policies: dict[str, UseCasePolicy], sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter_airflow.dag_factory import INFERENCE_STEPS, REFRESH_STEPS
    from charter_airflow.guardrail_tasks import run_step

    monkeypatch.setenv("CHARTER_DATA_DIR", str(sample))
    policy = policies["citizen_requests"]
    drift = {s.task_id: s for s in INFERENCE_STEPS}["check_drift"]
    representativeness = {s.task_id: s for s in REFRESH_STEPS}["check_representativeness"]
    context = {"dag_run": SimpleNamespace(dag_id="citizen_requests_quality", run_id="manual__steps")}
    assert not profile_path("citizen_requests", "training").exists()
    xcom = run_step(drift, policy=policy, context=context)
    assert xcom["verdict"] == "pass"
    assert xcom["check"] == "drift"
    # no training run stored a profile yet: the policy's training file was profiled once and stored
    assert profile_path("citizen_requests", "training").is_file()
    json.dumps(xcom)
    # drift and representativeness are overridable: a failure is recorded and returned, and the gate decides
    drifted = "citizen_requests/inference_batch__drifted.csv"
    assert run_step(drift, policy=policy, context=context, path=drifted)["verdict"] == "fail"
    biased = "citizen_requests/training__biased.csv"
    assert run_step(representativeness, policy=policy, context=context, path=biased)["verdict"] == "fail"
    assert run_step(representativeness, policy=policy, context=context)["verdict"] == "pass"


# -- SQL fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_data_url() -> Iterator[str]:
    import psycopg

    name = f"charter_qdrift_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def data_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        yield request.getfixturevalue("pg_data_url")


def _load_table(frame: Any, url: str, table: str) -> None:
    from charter_guardrails.checks.quality.runner import sql_url
    from sqlalchemy import create_engine

    engine = create_engine(sql_url(url))
    try:
        frame.to_sql(table, engine, if_exists="replace", index=False)
    finally:
        engine.dispose()


def _typed_sql(policy: UseCasePolicy, dataset: str, table: str, url: str) -> Any:
    from charter_guardrails.checks.quality.runner import sql_url

    return apply_types(read_sql_table(table, sql_url(url)), policy.dataset(dataset))[0]
