"""Quality suites and the GX validation runner: suites as files, files and SQL tables (SQLite and
PostgreSQL, validated in the database), bad input as failing verdicts, and redaction of personal
values in results, ledger, XCom payload and Data Docs."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from charter_guardrails.checks.quality.redaction import mask_value, unexpected_counts
from charter_guardrails.checks.quality.runner import _naive_utc, validate_file, validate_frame, validate_table
from charter_guardrails.checks.quality.suites import gx_suite_json, load_suite
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.errors import SuiteError
from charter_guardrails.core.policy import UseCasePolicy, policy_files
from charter_guardrails.core.results import Verdict
from charter_guardrails.core.settings import get_settings
from charter_guardrails.core.stored_paths import from_stored
from charter_guardrails.readers.files import apply_types, read_dataset

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("CHARTER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
SUITES = [
    "citizen_requests.training.json",
    "citizen_requests.inference.json",
    "waste_tonnage.training.json",
    "waste_tonnage.inference.json",
]
PLANTED = ["Dupontel", "jeanne.dupontel@example.fr", "06 12 34 56 78", "1 84 12 76 451 089 46"]


@pytest.fixture(scope="module")
def policies() -> dict[str, UseCasePolicy]:
    return {p.id: p for p in (UseCasePolicy.from_file(f) for f in policy_files())}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, policies: dict[str, UseCasePolicy]) -> Path:
    """The deterministic sample data and its bad variants, generated once for the module."""
    from charter_demo.sample_data import generate

    folder = tmp_path_factory.mktemp("quality_data")
    generate(folder, policies)
    return folder


def _typed(policy: UseCasePolicy, dataset: str, path: Path) -> Any:
    ds = policy.dataset(dataset)
    return _naive_utc(apply_types(read_dataset(ds, path), ds)[0])


def _failed(result: Any) -> set[tuple[str, str]]:
    return {(o["expectation"], ",".join(o["columns"])) for o in result.evidence["expectations"] if not o["success"]}


# -- suites as files --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SUITES)
def test_every_suite_round_trips(name: str) -> None:
    raw = json.loads((ROOT / "expectations" / name).read_text(encoding="utf-8"))
    loaded = load_suite(name)
    assert loaded.to_json_dict() == raw
    back = gx_suite_json(loaded.gx_suite)  # through GX's own ExpectationSuite and back
    assert back["name"] == raw["name"]
    assert back["expectations"] == raw["expectations"]
    assert all(e["meta"]["severity"] in ("error", "warning") for e in raw["expectations"])


def test_suites_cover_what_the_issue_asks() -> None:
    training = load_suite("citizen_requests.training.json")
    types = {e.type for e in training.expectations}
    assert {
        "expect_table_columns_to_match_set",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_unique",
        "expect_table_row_count_to_be_between",
        "expect_column_value_lengths_to_be_between",
    } <= types
    sets = {
        e.kwargs["column"]: e.kwargs["value_set"]
        for e in training.expectations
        if e.type == "expect_column_values_to_be_in_set"
    }
    assert sets["arrondissement"] == [f"132{n:02d}" for n in range(1, 17)]
    assert {"channel", "category", "age_band"} <= set(sets)
    assert any("retention_start" in e.parameters for e in training.expectations)
    waste = {
        e.kwargs.get("column"): e.kwargs
        for e in load_suite("waste_tonnage.training.json").expectations
        if e.type == "expect_column_values_to_be_in_set"
    }
    assert set(waste) == {"commune", "flux"}
    for name in SUITES:
        assert len(load_suite(name).expectations) >= 15


def _suite_with(tmp_path: Path, expectation: dict[str, Any]) -> Path:
    raw = json.loads((ROOT / "expectations" / "waste_tonnage.inference.json").read_text(encoding="utf-8"))
    raw["expectations"].append(expectation)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_unknown_expectation_type_is_a_clear_error(tmp_path: Path) -> None:
    path = _suite_with(
        tmp_path, {"type": "expect_column_to_be_lovely", "kwargs": {"column": "flux"}, "meta": {"severity": "error"}}
    )
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    assert str(path) in message
    assert "expect_column_to_be_lovely" in message
    assert "unknown expectation type" in message
    assert "expectations[21]" in message


def test_bad_kwargs_are_a_clear_error(tmp_path: Path) -> None:
    path = _suite_with(
        tmp_path,
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "flux", "min_value": "zero", "mostly": 7},
            "meta": {"severity": "error"},
        },
    )
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert "expect_column_values_to_be_between" in str(err.value)
    assert "bad kwargs" in str(err.value)
    assert "mostly" in str(err.value)


def test_missing_severity_and_unknown_parameter_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"meta\.severity"):
        load_suite(
            _suite_with(
                tmp_path, {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "flux"}, "meta": {}}
            )
        )
    with pytest.raises(SuiteError, match="unknown suite parameter 'yesterday'"):
        load_suite(
            _suite_with(
                tmp_path,
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "week", "min_value": {"$PARAMETER": "yesterday"}},
                    "meta": {"severity": "error"},
                },
            )
        )


# -- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_case", ["citizen_requests", "waste_tonnage"])
def test_clean_training_file_passes(
    use_case: str, policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path
) -> None:
    result = validate_file(policies[use_case], "training", sample / use_case / "training.csv", run_id="run_clean")
    assert result.verdict is Verdict.PASS, result.summary
    assert result.check == "quality"
    assert "equite.2" in result.engagements
    assert result.metrics["success_percent"] == 100.0
    assert all("result" in o for o in result.evidence["expectations"])
    docs = Path(result.report_path or "")
    assert docs.name == "index.html"
    assert docs.is_file()
    assert docs.is_relative_to(charter_home / "reports" / use_case / "run_clean" / "data_docs")
    json.dumps(result.to_json_dict())


def test_quality_failure_variant_fails_for_the_right_reasons(
    policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path
) -> None:
    result = validate_file(
        policies["citizen_requests"], "training", sample / "citizen_requests" / "training__quality_failure.csv"
    )
    assert result.verdict is Verdict.FAIL
    assert _failed(result) == {
        ("expect_column_values_to_not_be_null", "category"),
        ("expect_column_values_to_be_unique", "request_id"),
        ("expect_column_values_to_be_in_set", "arrondissement"),
        ("expect_column_values_to_be_in_set", "channel"),
    }
    by_column = {o["columns"][0]: o for o in result.evidence["expectations"] if not o["success"]}
    assert by_column["category"]["result"]["unexpected_count"] == 160
    # channel is not personal: its unexpected value is shown; arrondissement is (location): masked only
    assert by_column["channel"]["result"]["unexpected_examples"][0]["value"] == "pigeon_voyageur"
    assert by_column["arrondissement"]["result"]["unexpected_examples"][0]["value"] == "*****"
    assert "13299" not in json.dumps(result.to_json_dict())
    assert result.metrics["failed_error"] == 4
    assert result.metrics["success_percent"] < 100


def test_waste_quality_failure_variant_fails(
    policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path
) -> None:
    result = validate_file(
        policies["waste_tonnage"], "training", sample / "waste_tonnage" / "training__quality_failure.csv"
    )
    assert result.verdict is Verdict.FAIL
    failed = _failed(result)
    assert {
        ("expect_column_values_to_be_between", "tonnage_t"),
        ("expect_column_values_to_be_in_set", "flux"),
        ("expect_column_values_to_not_be_null", "population"),
    } <= failed


def test_only_error_severity_fails(policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path) -> None:
    frame = _typed(policies["citizen_requests"], "training", sample / "citizen_requests" / "training.csv")
    frame.loc[frame.index[:400], "age_band"] = None  # 10 % unknown age: a warning-severity expectation
    result = validate_frame(policies["citizen_requests"], "training", frame, data_docs=False)
    assert result.verdict is Verdict.WARN, result.summary
    assert _failed(result) == {("expect_column_values_to_not_be_null", "age_band")}
    assert result.metrics["failed_warning"] == 1
    assert result.metrics["failed_error"] == 0


def _typed_training(policy: UseCasePolicy, sample: Path) -> Any:
    """The waste_tonnage training sample, typed as the policy declares it."""
    return apply_types(
        read_dataset(policy.training_dataset, sample / "waste_tonnage" / "training.csv"), policy.training_dataset
    )[0]


def test_parquet_file_is_validated(
    policies: dict[str, UseCasePolicy], sample: Path, tmp_path: Path, charter_home: Path
) -> None:
    policy = policies["waste_tonnage"]
    frame = _typed_training(policy, sample)
    frame.to_parquet(tmp_path / "training.parquet")
    assert validate_file(policy, "training", tmp_path / "training.parquet", data_docs=False).verdict is Verdict.PASS
    frame["population"] = frame["population"].astype("string")  # a changed type
    frame.to_parquet(tmp_path / "changed.parquet")
    result = validate_file(policy, "training", tmp_path / "changed.parquet", data_docs=False)
    assert result.verdict is Verdict.FAIL
    problem = next(p for p in result.evidence["problems"] if p["kind"] == "type")
    assert problem["column"] == "population"
    assert "declared integer" in problem["message"]


def test_parquet_date32_column_is_a_date(
    policies: dict[str, UseCasePolicy], sample: Path, tmp_path: Path, charter_home: Path
) -> None:
    """pyarrow reads a Parquet ``date32`` column as ``datetime.date`` objects: a date column, not a changed type."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    policy = policies["waste_tonnage"]
    frame = _typed_training(policy, sample)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    weeks = pa.array(frame["week"].dt.date.tolist(), type=pa.date32())
    pq.write_table(table.set_column(table.schema.get_field_index("week"), "week", weeks), tmp_path / "dates.parquet")
    assert validate_file(policy, "training", tmp_path / "dates.parquet", data_docs=False).verdict is Verdict.PASS
    frame["week"] = frame["week"].dt.strftime("%Y-%m-%d").astype(object)  # dates stored as text: a changed type
    frame.to_parquet(tmp_path / "text_dates.parquet")
    result = validate_file(policy, "training", tmp_path / "text_dates.parquet", data_docs=False)
    assert result.verdict is Verdict.FAIL
    assert next(p for p in result.evidence["problems"] if p["kind"] == "type")["column"] == "week"


# -- bad input --------------------------------------------------------------------------------


def _rewrite_csv(src: Path, dst: Path, edit: Any, encoding: str = "utf-8") -> Path:
    lines = src.read_text(encoding=encoding).splitlines()
    dst.write_text("\n".join(edit(lines)) + "\n", encoding=encoding)
    return dst


def test_missing_column_is_named(
    policies: dict[str, UseCasePolicy], sample: Path, tmp_path: Path, charter_home: Path
) -> None:
    def drop_channel(lines: list[str]) -> list[str]:
        return [";".join(p for i, p in enumerate(line.split(";")) if i != 4) for line in lines]

    path = _rewrite_csv(
        sample / "waste_tonnage" / "inference_batch.csv",
        tmp_path / "no_flux.csv",
        lambda ls: [";".join(p for i, p in enumerate(line.split(";")) if i != 2) for line in ls],
        encoding="latin-1",
    )
    result = validate_file(policies["waste_tonnage"], "inference", path, data_docs=False)
    assert result.verdict is Verdict.FAIL
    assert {"kind": "missing_column", "columns": ["flux"]}.items() <= result.evidence["problems"][0].items()
    assert "missing" in result.summary
    assert "flux" in result.summary
    skipped = [o for o in result.evidence["expectations"] if "flux" in o["columns"]]
    assert skipped
    assert all(not o["success"] and "absent" in o["error"] for o in skipped)
    assert drop_channel(["a;b;c;d;e;f"]) == ["a;b;c;d;f"]


def test_extra_column_is_named(policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path) -> None:
    result = validate_file(
        policies["citizen_requests"],
        "training",
        sample / "citizen_requests" / "training__pii_leak.csv",
        data_docs=False,
    )
    assert result.verdict is Verdict.FAIL
    assert any(
        p["kind"] == "extra_column" and p["columns"] == ["telephone_usager"] for p in result.evidence["problems"]
    )
    assert ("expect_table_columns_to_match_set", "") in _failed(result)


def test_changed_type_in_csv_is_named(
    policies: dict[str, UseCasePolicy], sample: Path, tmp_path: Path, charter_home: Path
) -> None:
    def spoil(lines: list[str]) -> list[str]:
        out = [lines[0]]
        for i, line in enumerate(lines[1:]):
            parts = line.split(";")
            if i % 10 == 0:
                parts[3] = "beaucoup"  # population
            out.append(";".join(parts))
        return out

    path = _rewrite_csv(sample / "waste_tonnage" / "training.csv", tmp_path / "typed.csv", spoil, encoding="latin-1")
    result = validate_file(policies["waste_tonnage"], "training", path, data_docs=False)
    assert result.verdict is Verdict.FAIL
    problem = next(p for p in result.evidence["problems"] if p["kind"] == "type")
    assert problem["column"] == "population"
    assert problem["count"] > 0
    assert "integer" in problem["message"]


def test_empty_dataset_fails(
    policies: dict[str, UseCasePolicy], sample: Path, tmp_path: Path, charter_home: Path
) -> None:
    header_only = _rewrite_csv(
        sample / "waste_tonnage" / "training.csv", tmp_path / "empty.csv", lambda ls: ls[:1], encoding="latin-1"
    )
    result = validate_file(policies["waste_tonnage"], "training", header_only, data_docs=False)
    assert result.verdict is Verdict.FAIL
    assert any(p["kind"] == "empty" for p in result.evidence["problems"])
    assert "empty" in result.summary
    zero = tmp_path / "zero.csv"
    zero.write_bytes(b"")
    result = validate_file(policies["waste_tonnage"], "training", zero)
    assert result.verdict is Verdict.FAIL
    assert "empty" in result.summary


def test_unreadable_file_fails_without_crashing(
    policies: dict[str, UseCasePolicy], tmp_path: Path, charter_home: Path
) -> None:
    missing = validate_file(policies["waste_tonnage"], "training", tmp_path / "nowhere.csv")
    assert missing.verdict is Verdict.FAIL
    assert "missing" in missing.summary
    assert "nowhere.csv" in missing.summary
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"commune;week\x00\x01\x02" * 50)
    result = validate_file(policies["waste_tonnage"], "training", binary)
    assert result.verdict is Verdict.FAIL
    assert result.evidence["problems"][0]["kind"] == "binary"


def test_suite_with_unknown_column_fails_and_names_it(
    policies: dict[str, UseCasePolicy], sample: Path, tmp_path: Path, charter_home: Path
) -> None:
    suite = _suite_with(
        tmp_path,
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "colonne_fantome"},
            "meta": {"severity": "error"},
        },
    )
    result = validate_file(
        policies["waste_tonnage"],
        "inference",
        sample / "waste_tonnage" / "inference_batch.csv",
        suite=suite,
        data_docs=False,
    )
    assert result.verdict is Verdict.FAIL
    assert any(
        p["kind"] == "unknown_column" and p["columns"] == ["colonne_fantome"] for p in result.evidence["problems"]
    )
    assert "colonne_fantome" in result.summary


# -- SQL tables, validated inside the database ------------------------------------------------


@pytest.fixture(scope="module")
def pg_data_url() -> Iterator[str]:
    """A scratch PostgreSQL database for data tables (not the ledger), dropped afterwards."""
    import psycopg

    name = f"charter_qdata_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _load_table(frame: Any, url: str, table: str) -> None:
    from charter_guardrails.checks.quality.runner import sql_url
    from sqlalchemy import create_engine

    engine = create_engine(sql_url(url))
    try:
        frame.to_sql(table, engine, if_exists="replace", index=False)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def data_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        yield request.getfixturevalue("pg_data_url")


@pytest.mark.parametrize("use_case", ["citizen_requests", "waste_tonnage"])
def test_sql_tables_clean_pass_and_failure_variant_fails(
    use_case: str, data_url: str, policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path
) -> None:
    policy = policies[use_case]
    _load_table(_typed(policy, "training", sample / use_case / "training.csv"), data_url, f"{use_case}_clean")
    _load_table(
        _typed(policy, "training", sample / use_case / "training__quality_failure.csv"), data_url, f"{use_case}_bad"
    )
    clean = validate_table(policy, "training", f"{use_case}_clean", url=data_url, run_id="sql_run")
    assert clean.verdict is Verdict.PASS, clean.summary
    assert Path(clean.report_path or "").is_file()
    bad = validate_table(policy, "training", f"{use_case}_bad", url=data_url, data_docs=False)
    assert bad.verdict is Verdict.FAIL
    expected = (
        {("expect_column_values_to_be_in_set", "arrondissement"), ("expect_column_values_to_be_unique", "request_id")}
        if use_case == "citizen_requests"
        else {("expect_column_values_to_be_between", "tonnage_t")}
    )
    assert expected <= _failed(bad)
    assert "13299" not in json.dumps(bad.to_json_dict())  # masked inside the database path too


def test_missing_table_and_changed_sql_type_fail(
    data_url: str, policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path
) -> None:
    policy = policies["waste_tonnage"]
    missing = validate_table(policy, "training", "no_such_table", url=data_url)
    assert missing.verdict is Verdict.FAIL
    assert "does not exist" in missing.summary
    frame = _typed(policy, "training", sample / "waste_tonnage" / "training.csv")
    frame["population"] = frame["population"].astype("string")
    _load_table(frame, data_url, "waste_changed")
    result = validate_table(policy, "training", "waste_changed", url=data_url, data_docs=False)
    assert result.verdict is Verdict.FAIL
    assert ("expect_column_values_to_be_in_type_list", "population") in _failed(result)


# -- redaction: results, ledger, XCom payload, Data Docs --------------------------------------


def test_mask_value_keeps_shape_only() -> None:
    assert mask_value("06 12 34 56 78") == "06 ** ** ** 78"
    assert mask_value("13299") == "*****"
    assert "Dupontel" not in mask_value("Jeanne Dupontel")


def _plant(src: Path, dst: Path) -> Path:
    """Known personal values in failing personal columns: arrondissement (location, out of its set),
    request_id (identifier, breaks its pattern) and message (free text, too long)."""
    lines = src.read_text(encoding="utf-8").splitlines()
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        parts = line.split(";")
        if len(parts) == 7 and i % 50 == 7:
            parts[3] = "Chez Jeanne Dupontel 06 12 34 56 78"
            parts[0] = "NIR 1 84 12 76 451 089 46"
            parts[2] = ("Jeanne Dupontel jeanne.dupontel@example.fr 06 12 34 56 78 " * 40).strip()
        out.append(";".join(parts))
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")
    return dst


def _ledger_text() -> str:
    from charter_guardrails.ledger.models import Base
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    chunks: list[str] = []
    with ledger_session() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).all():
                chunks.append(json.dumps([str(v) for v in row], ensure_ascii=False))
                chunks.append(repr(tuple(row)))
    return "\n".join(chunks)


def test_planted_personal_values_never_leave(
    ledger_url: str, policies: dict[str, UseCasePolicy], sample: Path, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from charter_airflow.dag_factory import REFRESH_STEPS
    from charter_airflow.guardrail_tasks import run_step
    from charter_airflow.runtime import persist_and_gate

    # a delivery inside the data folder: the Airflow steps refuse files outside it
    (get_settings().data_dir / "citizen_requests").mkdir(parents=True, exist_ok=True)
    planted = _plant(
        sample / "citizen_requests" / "training.csv", get_settings().data_dir / "citizen_requests" / "planted.csv"
    )
    raw = planted.read_text(encoding="utf-8")
    assert all(value in raw for value in PLANTED)
    policy = policies["citizen_requests"]
    context = {"dag_run": SimpleNamespace(dag_id="citizen_requests_quality", run_id="manual__planted")}

    step = {s.task_id: s for s in REFRESH_STEPS}["validate_quality"]
    # quality is overridable: the task records the failure and returns it, and the gate decides
    assert run_step(step, policy=policy, context=context, path=str(planted))["verdict"] == "fail"
    from charter_guardrails.ledger.models import CheckRun
    from charter_guardrails.ledger.store import ledger_session, results_for_run
    from sqlalchemy import select

    with ledger_session() as session:
        run = session.scalars(select(CheckRun).where(CheckRun.run_id == "manual__planted")).one()
        result = results_for_run(session, run)[0]
    assert result.verdict is Verdict.FAIL
    failed = _failed(result)
    assert {
        ("expect_column_values_to_be_in_set", "arrondissement"),
        ("expect_column_values_to_match_regex", "request_id"),
        ("expect_column_value_lengths_to_be_between", "message"),
    } <= failed
    masked = next(
        o["result"].get("unexpected_examples")
        for o in result.evidence["expectations"]
        if o["columns"] == ["arrondissement"] and not o["success"]
    )
    assert masked
    assert masked[0]["value"].startswith("Ch**")
    assert masked[0]["count"] >= 1

    xcom = persist_and_gate(result, policy=policy, context=context, fail_on=())  # what the task returns for XCom
    with pytest.raises(AirflowFailException) as failure:  # the message the task would raise, were it a hard check
        persist_and_gate(result, policy=policy, context=context, fail_on=("fail",))
    docs = from_stored(result.report_path, get_settings().reports_dir)  # the ledger stores it relative
    assert docs is not None
    docs_dir = docs.parent
    html = "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in docs_dir.rglob("*")
        if p.is_file() and p.suffix in (".html", ".json")
    )
    assert "expect_column_values_to_be_in_set" in html or "arrondissement" in html  # the docs do describe the failure
    places = {
        "results": json.dumps(result.to_json_dict(), ensure_ascii=False),
        "xcom": json.dumps(xcom, ensure_ascii=False),
        "exception": str(failure.value),
        "ledger": _ledger_text(),
        "data_docs": html,
    }
    assert "manual__planted" in places["ledger"]
    for where, text in places.items():
        for value in PLANTED:
            assert value not in text, f"planted personal value found in {where}"
    shutil.rmtree(docs_dir)


# -- cost: what the runner asks of GX, how it writes Data Docs ---------------------------------


def _same_key(frame: Any, columns: list[str], rows: int) -> Any:
    """``rows`` rows that repeat the first row's compound key."""
    for column in columns:
        frame.loc[frame.index[1 : rows + 1], column] = frame[column].iloc[0]
    return frame


@pytest.mark.parametrize("use_case", ["citizen_requests", "waste_tonnage"])
def test_basic_result_format_records_what_summary_did(
    use_case: str, policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner asks GX for BASIC, which skips the row indexes SUMMARY computes; the evidence is the same,
    examples, their counts and their order included (masked for personal columns, tuples for compound keys)."""
    from charter_guardrails.checks.quality import suite_run

    policy = policies[use_case]
    frame = _typed(policy, "training", sample / use_case / "training__quality_failure.csv")
    if use_case == "waste_tonnage":
        frame = _same_key(frame, ["commune", "week", "flux"], 30)
    assert suite_run.RESULT_FORMAT["result_format"] == "BASIC"
    basic = validate_frame(policy, "training", frame, data_docs=False)
    monkeypatch.setattr(suite_run, "RESULT_FORMAT", {**suite_run.RESULT_FORMAT, "result_format": "SUMMARY"})
    summary = validate_frame(policy, "training", frame, data_docs=False)
    assert basic.evidence["expectations"] == summary.evidence["expectations"]
    assert basic.summary == summary.summary
    examples = [o["result"]["unexpected_examples"] for o in basic.evidence["expectations"] if not o["success"]]
    assert len([e for e in examples if e]) >= 3
    if use_case == "waste_tonnage":
        compound = next(
            o for o in basic.evidence["expectations"] if o["expectation"] == "expect_compound_columns_to_be_unique"
        )
        assert not compound["success"]
        assert compound["result"]["unexpected_examples"][0]["count"] == 20  # 31 equal keys, GX returns 20


def test_unexpected_counts_follow_gx() -> None:
    assert unexpected_counts(["b", "a", "b", "c"]) == [
        {"value": "b", "count": 2},
        {"value": "a", "count": 1},
        {"value": "c", "count": 1},
    ]
    assert unexpected_counts([{"x": 1, "y": "a"}, {"x": 1, "y": "a"}]) == [{"value": (1, "a"), "count": 2}]
    # values GX cannot order get no counts from GX: tallied by their text, in the order of the list
    assert unexpected_counts([2, "a"]) == [{"value": "2", "count": 1}, {"value": "a", "count": 1}]


def _docs_text(result: Any, run: str) -> str:
    docs = Path(result.report_path or "").parent
    pages = sorted(p for p in docs.rglob("*.html"))
    text = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    return re.sub(r"\d{8}T\d{6}\.\d{6}Z|\d{4}-\d{2}-\d{2}[ T][\d:.]+|_run_time_sort': [\d.]+|" + run, "", text)


def test_data_docs_compile_their_templates_once(
    policies: dict[str, UseCasePolicy], sample: Path, charter_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GX's views build a Jinja environment per page; the runner's views share compiled templates, so a
    second run compiles nothing and writes the same pages."""
    import jinja2

    policy = policies["citizen_requests"]
    frame = _typed(policy, "training", sample / "citizen_requests" / "training__quality_failure.csv")
    first = validate_frame(policy, "training", frame, run_id="docs_first")
    compiled: list[str | None] = []
    original = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: Any, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(name)
        return original(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    second = validate_frame(policy, "training", frame, run_id="docs_second")
    assert compiled == []
    assert "pigeon_voyageur" in _docs_text(second, "docs_second")  # the failing channel, with its value
    assert _docs_text(first, "docs_first") == _docs_text(second, "docs_second")


def test_template_cache_compiles_a_changed_template_again() -> None:
    import jinja2
    from charter_guardrails.checks.quality._gx_docs import TEMPLATE_CACHE

    cache = type(TEMPLATE_CACHE)()
    first = jinja2.Environment(
        loader=jinja2.DictLoader({"page.j2": "one {{ x }}"}), bytecode_cache=cache, autoescape=True
    )
    assert first.get_template("page.j2").render(x=1) == "one 1"
    second = jinja2.Environment(
        loader=jinja2.DictLoader({"page.j2": "two {{ x }}"}), bytecode_cache=cache, autoescape=True
    )
    assert second.get_template("page.j2").render(x=1) == "two 1"
    third = jinja2.Environment(
        loader=jinja2.DictLoader({"page.j2": "two {{ x }}"}), bytecode_cache=cache, autoescape=True
    )
    assert third.get_template("page.j2").render(x=2) == "two 2"


# -- CLI --------------------------------------------------------------------------------------


def test_cli_validate_records_in_the_ledger(ledger_url: str, sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from charter_guardrails.ledger.models import CheckResultRecord, CheckRun
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    code = charter(
        [
            "validate",
            str(sample / "waste_tonnage" / "training__quality_failure.csv"),
            "--policy",
            str(ROOT / "include" / "policies" / "waste_tonnage.yaml"),
            "--run-id",
            "cli_bad",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["verdict"] == "fail"
    assert out["check"] == "quality"
    code = charter(
        [
            "validate",
            str(sample / "waste_tonnage" / "inference_batch.csv"),
            "--policy",
            "waste_tonnage",
            "--suite",
            "waste_tonnage.inference.json",
            "--run-id",
            "cli_ok",
        ]
    )
    human = capsys.readouterr().out
    assert code == 0
    assert "quality PASS  waste_tonnage/inference" in human
    assert "report:" in human
    with ledger_session() as session:
        rows = session.execute(
            select(CheckRun.run_id, CheckRun.dag_id, CheckResultRecord.verdict, CheckResultRecord.report_path).join(
                CheckResultRecord, CheckResultRecord.check_run_id == CheckRun.id
            )
        ).all()
    by_run = {r.run_id: r for r in rows}
    assert by_run["cli_bad"].verdict == "fail"
    assert by_run["cli_ok"].verdict == "pass"
    assert by_run["cli_ok"].dag_id == "cli"
    assert by_run["cli_ok"].report_path.endswith("index.html")
    docs = from_stored(by_run["cli_ok"].report_path, get_settings().reports_dir)  # stored relative to the reports
    assert docs is not None
    assert docs.is_file()


def test_cli_validate_table_and_usage(
    charter_home: Path, sample: Path, policies: dict[str, UseCasePolicy], capsys: pytest.CaptureFixture[str]
) -> None:
    from charter_guardrails.ledger import db

    db.migrate()
    url = f"sqlite:///{charter_home / 'warehouse.db'}"
    _load_table(
        _typed(policies["waste_tonnage"], "training", sample / "waste_tonnage" / "training__quality_failure.csv"),
        url,
        "tonnages",
    )
    code = charter(
        [
            "validate",
            "--table",
            "tonnages",
            "--url",
            url,
            "--policy",
            "waste_tonnage",
            "--dataset",
            "training",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["evidence"]["source"].endswith("#tonnages")
    assert charter(["validate", "--policy", "waste_tonnage"]) == 2  # neither FILE nor --table
