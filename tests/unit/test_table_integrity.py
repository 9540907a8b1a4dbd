"""Integrity of a ``format: sql`` dataset end to end, on SQLite and PostgreSQL: ``charter hash --dataset`` registers
the table's signed manifest in the ledger, ``charter verify --dataset`` checks the table against it, and a changed
cell, an inserted row and a deleted row each give ``data_changed`` localised to its key range, with an incident
and no cell value in the verdict, the incident or the manifest; the policy's ``order_by`` and its refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from charter_guardrails.cli.main import main as charter

from tests.sql_dataset import (
    CORRUPTIONS,
    PER_LEAF,
    REF,
    ROWS,
    SECRET,
    TABLE,
    corrupt,
    create_table,
    data_url,
    execute,
    range_of,
    write_policies,
)


@pytest.fixture
def warehouse(ledger_url: str, charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The data database (``CHARTER_DATA_URL``) and a policies folder where the training dataset is its table."""
    url = data_url(ledger_url, charter_home)
    monkeypatch.setenv("CHARTER_DATA_URL", url)
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(write_policies(charter_home / "policies")))
    return url


def _charter(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any] | None, str]:
    """Exit code, the JSON printed (if any) and stderr of one command."""
    code = charter(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip().startswith("{") else None), err


def _manifest_document() -> dict[str, Any]:
    from charter_guardrails.checks.integrity.manifest_registry import active_manifest
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        row = active_manifest(session, "citizen_requests", "training")
        assert row is not None
        assert (row.file_name, row.size_bytes, row.row_count, row.chunk_size) == (TABLE, 0, ROWS, PER_LEAF)
        return dict(row.document)


def _recorded(run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The integrity results' evidence and summaries, and the incidents' facts, of one CLI run."""
    from charter_guardrails.ledger.models import CheckResultRecord, CheckRun, Incident
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        run = session.scalars(select(CheckRun).where(CheckRun.run_id == run_id)).one()
        results = session.scalars(select(CheckResultRecord).where(CheckResultRecord.check_run_id == run.id)).all()
        incidents = session.scalars(select(Incident).where(Incident.run_id == run_id)).all()
        return (
            [r.evidence for r in results],
            [dict(i.facts) for i in incidents],
            [r.summary for r in results] + [f"{i.title} {i.nature}" for i in incidents],
        )


def test_a_registered_table_verifies_intact_and_each_corruption_is_localised_without_a_cell_value(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_table(warehouse)
    code, registered, _ = _charter(capsys, "hash", "--dataset", REF, "--rows-per-leaf", str(PER_LEAF), "--json")
    assert code == 0
    assert registered is not None
    assert (registered["table"], registered["key_columns"], registered["row_count"]) == (TABLE, ["row_id"], ROWS)
    assert registered["leaves"] == ROWS // PER_LEAF
    document = _manifest_document()
    assert SECRET not in json.dumps(document)

    code, intact, _ = _charter(capsys, "verify", "--dataset", REF, "--json", "--run-id", "cli:intact")
    assert code == 0
    assert intact is not None
    assert intact["outcome"] == "intact"
    assert f"table {TABLE} matches its signed manifest" in intact["summary"]

    for kind, (key, delta) in CORRUPTIONS.items():
        undo = corrupt(warehouse, kind)
        run_id = f"cli:{kind.replace(' ', '_')}"
        code, changed, _ = _charter(capsys, "verify", "--dataset", REF, "--json", "--run-id", run_id)
        assert code == 1, kind
        assert changed is not None
        assert changed["outcome"] == "data_changed"
        assert changed["incident_id"] is not None
        ranges = changed["facts"]["changed_ranges"]
        assert [r["index"] for r in ranges] == [range_of(document, key)], kind
        assert ranges[0]["rows_now"] - ranges[0]["rows_registered"] == delta
        assert changed["facts"]["rows_now"] == ROWS + delta
        assert changed["facts"]["schema_changes"] == []
        assert f"key range {ranges[0]['index']}, row_id in [" in changed["summary"]
        evidence, incidents, summaries = _recorded(run_id)
        assert [e["outcome"] for e in evidence] == ["data_changed"]
        assert evidence[0]["changed_ranges"] == ranges
        assert [f["outcome"] for f in incidents] == ["data_changed"]
        assert "la table ne correspond plus" in summaries[-1]
        shown = json.dumps([changed, evidence, incidents, summaries], ensure_ascii=False)
        assert SECRET not in shown, kind
        assert "Quatrebarbe" not in shown
        undo()
    code, again, _ = _charter(capsys, "verify", "--dataset", REF, "--json", "--no-record")
    assert (code, again and again["outcome"]) == (0, "intact")


def test_a_changed_column_type_is_a_schema_change_and_an_unregistered_table_has_no_manifest(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_table(warehouse)
    code, missing, _ = _charter(capsys, "verify", "--dataset", REF, "--json", "--no-record")
    assert code == 2
    assert missing is not None
    assert missing["outcome"] == "no_manifest"
    assert f"run `charter hash --dataset {REF}` first" in missing["summary"]
    assert _charter(capsys, "hash", "--dataset", REF, "--quiet")[0] == 0
    execute(warehouse, f"ALTER TABLE {TABLE} ADD COLUMN flagged INTEGER")
    code, changed, _ = _charter(capsys, "verify", "--dataset", REF, "--json", "--no-record")
    assert code == 1
    assert changed is not None
    assert changed["facts"]["schema_changes"] == ["column flagged added (INTEGER)"]
    assert "the schema changed (column flagged added (INTEGER))" in changed["summary"]


def test_a_table_without_a_primary_key_needs_order_by_and_a_personal_key_is_refused(
    warehouse: str, charter_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    create_table(warehouse, primary_key=None)
    code, _, err = _charter(capsys, "hash", "--dataset", REF)
    assert code == 2
    assert f"table {TABLE} has no primary key" in err
    assert "order_by" in err

    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(write_policies(charter_home / "personal", order_by=["request_id"])))
    code, _, err = _charter(capsys, "hash", "--dataset", REF)
    assert code == 2
    assert "['request_id'] is declared as personal data" in err
    assert "surrogate key" in err

    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(write_policies(charter_home / "ordered", order_by=["row_id"])))
    code, registered, _ = _charter(capsys, "hash", "--dataset", REF, "--json")
    assert code == 0
    assert registered is not None
    assert registered["key_columns"] == ["row_id"]
    assert _charter(capsys, "verify", "--dataset", REF, "--quiet", "--no-record")[0] == 0


def test_a_personal_primary_key_is_refused_and_a_missing_table_is_named(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _charter(capsys, "hash", "--dataset", REF)
    assert code == 2
    assert f"table {TABLE} does not exist" in err
    code, _, err = _charter(capsys, "hash", "--dataset", "citizen_requests.inference")
    assert code == 2
    assert "is a csv file, not a table: give its FILE" in err
    create_table(warehouse, primary_key="request_id")
    code, _, err = _charter(capsys, "hash", "--dataset", REF)
    assert code == 2
    assert "declared as personal data" in err


def test_order_by_is_refused_on_a_file_dataset_and_must_name_declared_columns() -> None:
    from charter_guardrails.core.policy import UseCasePolicy, load_policy
    from pydantic import ValidationError

    raw = load_policy("citizen_requests").model_dump(mode="json")
    raw["datasets"][0]["order_by"] = ["request_id"]
    with pytest.raises(ValidationError, match="only a dataset with format: sql has it"):
        UseCasePolicy.model_validate(raw)
    raw["datasets"][0].update({"format": "sql", "table": "requests", "path": None, "order_by": ["nowhere"]})
    with pytest.raises(ValidationError, match=r"order_by \['nowhere'\] must name declared columns"):
        UseCasePolicy.model_validate(raw)
    raw["datasets"][0]["order_by"] = ["received_at", "request_id"]
    policy = UseCasePolicy.model_validate(raw)
    assert policy.dataset("training").order_by == ["received_at", "request_id"]
    assert "request_id" in policy.dataset("training").personal_columns()
    assert "received_at" not in policy.dataset("training").personal_columns()


def test_a_table_manifest_edited_in_the_ledger_is_caught_by_its_signature(
    warehouse: str, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from charter_guardrails.ledger import db
    from charter_guardrails.ledger.models import Manifest
    from sqlalchemy import update

    create_table(warehouse)
    assert _charter(capsys, "hash", "--dataset", REF, "--rows-per-leaf", str(PER_LEAF), "--quiet")[0] == 0
    document = _manifest_document()
    # A key boundary moved without re-signing: the manifest no longer matches its signature.
    leaves = [dict(leaf) for leaf in document["leaves"]]
    leaves[2]["start"] = [["i", "999999"]]
    with db.get_engine(ledger_url).begin() as conn:
        conn.execute(update(Manifest).values(document={**document, "leaves": leaves}))
    code, edited, _ = _charter(capsys, "verify", "--dataset", REF, "--json")
    assert code == 1
    assert edited is not None
    assert edited["outcome"] == "manifest_edited"
    assert edited["incident_id"] is not None
