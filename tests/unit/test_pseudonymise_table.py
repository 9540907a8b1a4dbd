"""The pseudonymised copy of a ``format: sql`` training table (``checks/privacy/pseudonymise_table.py``): written chunk
by chunk in one schema, the declared columns only, the pseudonyms a file gives, in key order; held to the pin. On
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.sql_dataset import ROWS, SECRET, TABLE, corrupt, create_table, data_url, execute, write_policies


@pytest.fixture
def table(ledger_url: str, charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test table on SQLite, or in the test's own PostgreSQL database (a server-side cursor)."""
    url = data_url(ledger_url, charter_home)
    monkeypatch.setenv("CHARTER_DATA_URL", url)
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(write_policies(charter_home / "policies")))
    create_table(url)
    return url


def _spec() -> Any:
    """The training table's dataset, its free text not masked (no NER here: the chunking is what is tested)."""
    from charter_guardrails.core.policy import load_policy

    spec = load_policy("citizen_requests").training_dataset
    columns = [c.model_copy(update={"pseudonymise": False}) if c.name == "message" else c for c in spec.columns]
    return spec.model_copy(update={"columns": columns})


def _copy(target: Path, **kwargs: Any) -> Any:
    from charter_guardrails.checks.privacy.pseudonymise_table import pseudonymise_table

    return pseudonymise_table(_spec(), target, use_case="citizen_requests", key=b"k" * 32, derivation="hkdf", **kwargs)


def test_the_copy_is_written_chunk_by_chunk_in_one_schema_with_the_declared_columns_only(
    table: str, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq
    from charter_guardrails.checks.privacy.pseudonymise import pseudonym, read_copy_metadata

    assert TABLE == "citizen_requests_rows"
    execute(table, "ALTER TABLE citizen_requests_rows ADD COLUMN note TEXT")
    execute(table, "UPDATE citizen_requests_rows SET note = 'confidentiel'")
    execute(table, "UPDATE citizen_requests_rows SET age_band = NULL WHERE row_id <= 70")  # a chunk of nulls
    target = tmp_path / "training__pseudonymised.parquet"
    verification, report = _copy(target, chunk_rows=7)  # 43 chunks
    assert verification is None  # no pin: a call outside a run
    assert report.rows == ROWS
    assert report.dropped_columns == ["note"]
    assert report.hashed_columns == ["row_id", "request_id"]
    parquet = pq.ParquetFile(target)
    assert parquet.metadata.num_row_groups == -(-ROWS // 7)
    copy = parquet.read().to_pandas()
    assert list(copy.columns) == [c.name for c in _spec().columns]  # "note" never reaches the copy
    key = b"k" * 32
    assert copy["row_id"].tolist() == [pseudonym(key, str(10 * i + 10)) for i in range(ROWS)]  # key order
    assert copy["request_id"].tolist() == [pseudonym(key, f"R{i:05d}") for i in range(ROWS)]
    assert copy["age_band"].isna().sum() == ROWS // 5 + 5  # rows 0..6 have none; 0 and 5 had none already
    assert str(parquet.schema_arrow.field("received_at").type) == "timestamp[us, tz=UTC]"
    assert read_copy_metadata(target) == {
        "use_case": "citizen_requests",
        "dataset": "training",
        "key_derivation": "hkdf",
        "hash": "hmac-sha256",
    }
    assert not target.with_name(target.name + ".tmp").exists()


def test_the_copy_is_kept_only_if_the_rows_hash_to_the_pinned_root(table: str, tmp_path: Path) -> None:
    from charter_guardrails.checks.integrity.table_verification import PinnedTable, register_dataset_table
    from charter_guardrails.core.policy import load_policy

    document = register_dataset_table(load_policy("citizen_requests"), "training", rows_per_leaf=50)
    pin = PinnedTable("citizen_requests", "training", TABLE, document["merkle_root"], ROWS, 1)
    target = tmp_path / "work" / "training__pseudonymised.parquet"
    verification, report = _copy(target, pin=pin, document=document, chunk_rows=100)
    assert verification.intact
    assert report.rows == ROWS
    assert target.exists()

    corrupt(table, "changed cell")
    verification, report = _copy(target, pin=pin, document=document, chunk_rows=100)
    assert report is None
    assert verification.outcome.value == "data_changed"
    assert [r["index"] for r in verification.facts["changed_ranges"]] == [2]  # row_id 1210, 50 rows per range
    assert not target.exists()  # nor the copy of an earlier attempt
    assert list(target.parent.iterdir()) == []
    assert SECRET not in str(verification.facts)
