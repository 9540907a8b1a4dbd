"""A ``format: sql`` training dataset, and one in object storage, refresh end to end (issue #16).

The sample training CSV of ``citizen_requests`` is loaded into a table (with a surrogate primary key ``row_id``,
declared in the policy) of a SQLite file, or of the test's own PostgreSQL database, and registered with its table
manifest. The refresh steps run here in DAG order, in this process, on a real ledger (the same SQLite or
PostgreSQL), with a task instance stand-in that serves the XComs of the tasks before (``charter_airflow.step_runner``).
The same rows delivered as a CSV file, and that file as an object of a bucket of the loopback S3-compatible
server, give the same verdicts, guardrail by guardrail, up to the gate (on PostgreSQL too: there GX 1.24 failed a
``VARCHAR(20)`` column of a string type list, now judged on the reflected type). An object written again after its
verification does not reach training: the run trains on the staged copy of the verified version.
A row changed between ``verify_integrity`` and ``pseudonymise`` is refused by ``pseudonymise`` with the integrity
verdict and incident, and no training input is left behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sql_dataset import TABLE, write_policies

USE_CASE = "citizen_requests"
REF = f"{USE_CASE}.training"
ROWS_CSV = f"{USE_CASE}/training_rows.csv"
ROWS = 400


def _policies(folder: Path, *, kind: str, uri: str | None = None) -> Path:
    """The shipped policies with ``row_id`` declared; the training dataset the table, the CSV of the same rows, or
    that CSV as an object of the bucket (``uri``)."""
    from tests.object_store import CONN_ID

    write_policies(folder)
    path = folder / f"{USE_CASE}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    training = next(d for d in document["datasets"] if d["id"] == "training")
    if kind != "sql":
        training.pop("table")
        source = {"path": ROWS_CSV} if kind == "csv" else {"uri": uri, "conn_id": CONN_ID}
        training.update({"format": "csv", **source, "csv": {"separator": ";", "decimal": ",", "encoding": "utf-8"}})
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture
def refresh(ledger_url: str, charter_home: Path, s3_bucket: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A migrated ledger, on SQLite or on its own PostgreSQL database; the sample training rows as a CSV file
    (``row_id`` first), as an object of a versioned bucket of the loopback S3-compatible server, and as a table of
    the data database: a SQLite file beside the ledger, or the ledger's own PostgreSQL database."""
    from charter_demo.sample_data import generate
    from charter_demo.table_training import load_training_table, table_suites, with_row_ids
    from charter_guardrails.core.policy import UseCasePolicy, load_policy
    from charter_guardrails.core.settings import get_settings

    from tests.conftest import ROOT
    from tests.sql_dataset import data_url as data_url_of

    monkeypatch.setenv("CHARTER_EXPECTATIONS_DIR", str(table_suites(ROOT / "expectations", charter_home / "suites")))
    data_url = data_url_of(ledger_url, charter_home)
    monkeypatch.setenv("CHARTER_DATA_URL", data_url)
    data_dir = get_settings().data_dir
    generate(data_dir, {USE_CASE: load_policy(USE_CASE)}, rows=ROWS)
    shipped = load_policy(USE_CASE).training_dataset
    with_row_ids(data_dir / f"{USE_CASE}/training.csv", data_dir / ROWS_CSV, shipped)
    s3_bucket.put(ROWS_CSV, data_dir / ROWS_CSV)
    folders = {
        "csv": _policies(charter_home / "policies_csv", kind="csv"),
        "s3": _policies(charter_home / "policies_s3", kind="s3", uri=s3_bucket.uri(ROWS_CSV)),
        "sql": _policies(charter_home / "policies_sql", kind="sql"),
    }
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(folders["sql"]))
    on_file = UseCasePolicy.from_file(folders["csv"] / f"{USE_CASE}.yaml").training_dataset
    load_training_table(data_url, data_dir / ROWS_CSV, on_file, TABLE)
    return {"folders": folders, "data_url": data_url, "data_dir": data_dir, "bucket": s3_bucket}


def _context(run_id: str) -> dict[str, Any]:
    from charter_airflow.step_runner import step_context

    return step_context(f"{USE_CASE}_model_refresh", run_id)


def _run(task_id: str, context: dict[str, Any]) -> Any:
    from charter_airflow.dag_factory import REFRESH_STEPS
    from charter_airflow.runtime import load_policy
    from charter_airflow.step_runner import run_one

    return run_one(task_id, load_policy(USE_CASE), context, REFRESH_STEPS)


def _register(kind: str) -> None:
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.settings import get_settings

    if kind == "sql":
        assert charter(["hash", "--dataset", REF, "--rows-per-leaf", "50", "--quiet"]) == 0
    elif kind == "s3":
        assert charter(["hash", "--dataset", REF, "--quiet"]) == 0  # the dataset's object, staged
    else:
        assert charter(["hash", str(get_settings().data_dir / ROWS_CSV), "--dataset", REF, "--quiet"]) == 0


def _ledger(run_id: str) -> dict[str, Any]:
    from charter_guardrails.ledger.models import CheckResultRecord, CheckRun, Incident, ManifestVerification
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        run = session.scalars(select(CheckRun).where(CheckRun.run_id == run_id)).one()
        results = session.scalars(
            select(CheckResultRecord).where(CheckResultRecord.check_run_id == run.id).order_by(CheckResultRecord.id)
        ).all()
        incidents = session.scalars(select(Incident).where(Incident.run_id == run_id)).all()
        verifications = session.scalars(
            select(ManifestVerification).where(ManifestVerification.run_id == run_id).order_by(ManifestVerification.id)
        )
        return {
            "verdicts": {(r.check, r.dataset): r.verdict for r in results},
            "evidence": {r.check: r.evidence for r in results},
            "incidents": [(i.breach_type, i.dataset, i.severity) for i in incidents],
            "incident_facts": [i.facts for i in incidents],
            "verifications": [v.outcome for v in verifications],
        }


def _refresh(kind: str, folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Register the training data of ``kind``, run the refresh's guardrails in order, then decide as the gate does."""
    from charter_airflow.publish import run_results
    from charter_airflow.runtime import load_policy
    from charter_guardrails.decision.gate import REFRESH_CHECKS, decide

    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(folders[kind]))
    _register(kind)
    from charter_airflow.step_runner import run_refresh_guardrails

    context = run_refresh_guardrails(load_policy(USE_CASE), f"manual__{kind}")
    decision = decide(run_results(load_policy(USE_CASE), context), REFRESH_CHECKS)
    return {"ledger": _ledger(f"manual__{kind}"), "decision": decision, "xcoms": context["ti"].xcoms}


def test_a_sql_training_table_refreshes_with_the_verdicts_of_the_same_rows_as_a_csv_file(
    refresh: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd
    import pyarrow.parquet as pq
    from charter_guardrails.checks.privacy.pseudonymise import read_copy_metadata
    from charter_guardrails.decision.gate import REFRESH_CHECKS

    on_file = _refresh("csv", refresh["folders"], monkeypatch)
    on_object = _refresh("s3", refresh["folders"], monkeypatch)
    on_table = _refresh("sql", refresh["folders"], monkeypatch)

    # The same bytes as an object of the bucket: the same verdicts, the same decision; pinned at its version.
    assert on_object["ledger"]["verdicts"] == on_file["ledger"]["verdicts"]
    assert on_object["decision"].to_json_dict() == on_file["decision"].to_json_dict()
    assert on_object["ledger"]["incidents"] == []
    assert on_object["ledger"]["verifications"] == ["intact"]
    object_pin = on_object["xcoms"]["verify_integrity"]["pin"]
    assert (
        object_pin["version_id"]
        == refresh["bucket"].client().head_object(Bucket=refresh["bucket"].name, Key=ROWS_CSV)["VersionId"]
    )
    assert object_pin["path"] == f".objects/s3/{refresh['bucket'].name}/{ROWS_CSV}"
    assert object_pin["merkle_root"] == on_file["xcoms"]["verify_integrity"]["pin"]["merkle_root"]

    verdicts = on_table["ledger"]["verdicts"]
    assert {check for check, _dataset in verdicts} >= set(REFRESH_CHECKS)  # every guardrail recorded
    assert verdicts == on_file["ledger"]["verdicts"]
    assert verdicts[("integrity", "training")] == "pass"
    assert verdicts[("personal_data", "training")] != "fail"
    assert verdicts[("proportionality", "training")] != "fail"
    assert verdicts[("training", "training")] == "pass"
    assert on_table["decision"].to_json_dict() == on_file["decision"].to_json_dict()
    assert on_table["decision"].missing == []
    assert on_table["ledger"]["incidents"] == on_file["ledger"]["incidents"] == []
    assert on_table["ledger"]["verifications"] == ["intact"]
    assert on_table["xcoms"]["verify_integrity"]["pin"]["kind"] == "table"

    # The pseudonymised copy: the declared columns, the file's pseudonyms and masks, typed as declared.
    copies = {kind: Path(run["xcoms"]["pseudonymise"]) for kind, run in (("csv", on_file), ("sql", on_table))}
    assert copies["sql"].name == "training__pseudonymised.parquet"
    assert not [p.name for p in copies["sql"].parent.iterdir() if p.name.endswith(".tmp")]
    table_copy, file_copy = (pd.read_parquet(copies[kind]) for kind in ("sql", "csv"))
    assert list(table_copy.columns) == list(file_copy.columns)
    assert len(table_copy) == ROWS
    for column in ("row_id", "request_id", "message", "arrondissement", "channel", "category"):
        assert table_copy[column].astype(str).tolist() == file_copy[column].astype(str).tolist(), column
    assert table_copy["message"].str.contains(r"<[A-Z_]+_[0-9a-f]{10}>").any()  # free text masked, as in the file
    assert str(pq.read_schema(copies["sql"]).field("received_at").type) == "timestamp[us, tz=UTC]"
    assert read_copy_metadata(copies["sql"]) == read_copy_metadata(copies["csv"])

    # Proportionality read the declared columns it keeps, and judged the others by name.
    def timeless(evidence: dict[str, Any]) -> dict[str, Any]:  # the runs' instants differ, not what they decided
        return {**evidence, "as_of": None, "retention": {**evidence["retention"], "cutoff": None}}

    evidence = on_table["ledger"]["evidence"]["proportionality"]
    assert timeless(evidence) == timeless(on_file["ledger"]["evidence"]["proportionality"])
    assert "request_id" in evidence["dropped_declared_columns"]
    assert evidence["missing_declared_columns"] == []


def test_a_row_changed_after_verification_is_refused_by_pseudonymise(
    refresh: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from charter_airflow.publish import run_results
    from charter_airflow.runtime import load_policy
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.decision.gate import REFRESH_CHECKS, decide

    from tests.sql_dataset import SECRET, corrupt

    _register("sql")
    context = _context("manual__changed")
    assert _run("verify_integrity", context)["verdict"] == "pass"
    corrupt(refresh["data_url"], "changed cell")  # row_id 1210 now holds SECRET
    with pytest.raises(AirflowFailException, match="guardrail integrity failed") as refused:
        _run("pseudonymise", context)
    assert f"table {TABLE} differs from its signed manifest" in str(refused.value)

    ledger = _ledger("manual__changed")
    assert ledger["verdicts"] == {("integrity", "training"): "fail"}
    changed = ledger["evidence"]["integrity"]["changed_ranges"]
    assert [(r["index"], r["rows_registered"], r["rows_now"]) for r in changed] == [(2, 50, 50)]  # row_id 1210
    assert ledger["incidents"] == [("integrity", "training", "critical")]
    assert ledger["verifications"] == ["intact", "data_changed"]
    assert "integrity" in decide(run_results(load_policy(USE_CASE), context), REFRESH_CHECKS).failed
    work = get_settings().home / "work" / USE_CASE / "manual__changed"
    assert not work.exists() or list(work.iterdir()) == []  # no training input, no partial copy
    shown = json.dumps([ledger["evidence"], ledger["incident_facts"], str(refused.value)], ensure_ascii=False)
    assert SECRET not in shown


def test_an_object_written_again_after_verification_is_not_what_gets_trained(
    refresh: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The object is staged once, by the integrity step, and pinned: later steps read that copy. A new version
    written to the bucket meanwhile (here with a row that holds a secret) is not read; the next run's integrity
    step finds it and refuses it as written again."""
    import pandas as pd

    from tests.sql_dataset import SECRET

    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(refresh["folders"]["s3"]))
    _register("s3")
    bucket, source = refresh["bucket"], refresh["data_dir"] / ROWS_CSV
    context = _context("manual__swapped")
    assert _run("verify_integrity", context)["verdict"] == "pass"
    swapped = source.read_text(encoding="utf-8").replace("\n", f"\n9999;{SECRET};", 1)
    bucket.put(ROWS_CSV, swapped.encode("utf-8"))
    for task_id in ("scan_personal_data", "pseudonymise"):  # the copy used for training
        _run(task_id, context)
    training_input = pd.read_parquet(context["ti"].xcoms["pseudonymise"])
    assert len(training_input) == ROWS  # the verified rows, not the swapped object's
    assert "9999" not in training_input["row_id"].astype(str).tolist()

    rerun = _context("manual__rerun")
    with pytest.raises(Exception, match="guardrail integrity failed"):
        _run("verify_integrity", rerun)
    ledger = _ledger("manual__rerun")
    assert ledger["verdicts"] == {("integrity", "training"): "fail"}
    assert ledger["incidents"] == [("integrity", "training", "critical")]
    assert SECRET not in json.dumps([ledger["evidence"], ledger["incident_facts"]], ensure_ascii=False)


def test_the_integrity_monitor_stages_a_registered_object_again(
    refresh: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``integrity_monitor`` verifies an object where it lives: listed by its URI, staged again from the bucket, so
    a version written since registration is a mismatch (its staged copy alone would still look intact)."""
    from airflow.sdk.exceptions import AirflowFailException
    from charter_airflow.guardrail_tasks import list_registered_datasets, verify_registered_dataset

    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(refresh["folders"]["s3"]))
    _register("s3")
    bucket = refresh["bucket"]
    [listed] = [d for d in list_registered_datasets() if d["dataset"] == "training"]
    assert listed == {"use_case": USE_CASE, "dataset": "training", "path": bucket.uri(ROWS_CSV)}
    assert verify_registered_dataset(**listed, context=_context("monitor__1"))["verdict"] == "pass"
    bucket.put(ROWS_CSV, refresh["data_dir"] / ROWS_CSV)  # the same bytes, written again: a new version
    with pytest.raises(AirflowFailException, match="guardrail integrity failed"):
        verify_registered_dataset(**listed, context=_context("monitor__2"))
    assert _ledger("monitor__2")["incidents"] == [("integrity", "training", "critical")]
