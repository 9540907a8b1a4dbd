"""The personal-data scan of a SQL table (checks.privacy.table_scan) gives the verdict the same data gives as a file.

The delivery of ``citizen_requests`` (the clean sample, and the variant with undeclared personal columns) is
loaded as text into a table of SQLite and of PostgreSQL; the file and each table are judged by the same policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from charter_guardrails.checks.privacy.report import ScanOptions
from charter_guardrails.checks.privacy.stream import scan_file
from charter_guardrails.checks.privacy.table_scan import scan_table
from charter_guardrails.checks.privacy.verdict import evaluate
from charter_guardrails.core.policy import load_policy

from tests.conftest import PG_ADMIN_URL, _create_pg_database, _drop_pg_database

ROWS = 300


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from charter_demo.sample_data import generate
    from charter_guardrails.core.policy import UseCasePolicy, policy_files

    folder = tmp_path_factory.mktemp("data")
    policies = {p.id: p for p in (UseCasePolicy.from_file(f) for f in policy_files()) if p.id == "citizen_requests"}
    generate(folder, policies, rows=ROWS)
    return {name: folder / "citizen_requests" / f"{name}.csv" for name in ("training", "training__pii_leak")}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(
    request: pytest.FixtureRequest, deliveries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Each delivery as a table of text columns (``training``, ``training__pii_leak``)."""
    from charter_guardrails.readers.files import detect_csv_dialect, read_csv
    from sqlalchemy import create_engine

    name = None
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('warehouse') / 'warehouse.db'}")
    else:
        name = _create_pg_database()
        engine = create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        for table, path in deliveries.items():
            frame = read_csv(path, detect_csv_dialect(path).as_policy_dialect())
            frame.to_sql(table, engine, index=False)
        yield engine
    finally:
        engine.dispose()
        if name:
            _drop_pg_database(name)


def _judged(scan: Any) -> tuple[str, list[tuple[str, list[str]]]]:
    policy = load_policy("citizen_requests")
    outcome = evaluate(scan, policy, policy.training_dataset)
    return outcome.result.verdict.value, sorted((c.column, sorted(c.forbidden)) for c in outcome.columns if not c.ok)


@pytest.mark.parametrize("mode", ["sampling", "exhaustive"])
def test_a_table_gets_the_verdict_and_findings_of_the_same_data_as_a_file(
    warehouse: Any, deliveries: dict[str, Path], mode: str
) -> None:
    policy = load_policy("citizen_requests")
    options = replace(ScanOptions.from_policy(policy.privacy, policy.training_dataset), mode=mode)
    for table, path in deliveries.items():
        from_file = scan_file(path, options, dialect=policy.training_dataset.csv)
        from_table = scan_table(warehouse, table, options)
        assert from_table.rows == from_file.rows == ROWS
        assert _judged(from_table) == _judged(from_file), table
        if mode == "exhaustive":  # every distinct value of both: the same counts, column by column
            counts = {c.name: sorted((f.entity_type, f.count) for f in c.findings) for c in from_file.columns}
            assert {c.name: sorted((f.entity_type, f.count) for f in c.findings) for c in from_table.columns} == counts
    verdict, flagged = _judged(scan_table(warehouse, "training__pii_leak", options))
    assert verdict == "fail"
    assert flagged, "the undeclared personal columns of the leak variant are found in the table"
    assert _judged(scan_table(warehouse, "training", options))[0] != "fail"


def test_a_large_postgresql_table_is_sampled_by_the_database_with_the_files_guarantee(warehouse: Any) -> None:
    """Above three sample sizes, PostgreSQL draws a Bernoulli sample (TABLESAMPLE ... REPEATABLE) and the seeded
    sampler keeps n of it; 3 % of the rows hold a phone number, above the 1 % the guarantee is about."""
    import pandas as pd

    rows = 20_000
    phones = [f"06 {i % 90 + 10:02d} 34 56 {i % 80 + 10:02d}" if i % 33 == 0 else f"dossier {i}" for i in range(rows)]
    pd.DataFrame({"ref": [str(i) for i in range(rows)], "remarque": phones}).to_sql(
        "large_delivery", warehouse, index=False, if_exists="replace"
    )
    options = ScanOptions()
    first, again = scan_table(warehouse, "large_delivery", options), scan_table(warehouse, "large_delivery", options)
    assert first.rows == rows
    assert first.scanned_rows == 459  # n = sample_size(1 %, 99 %)
    assert [c.name for c in first.columns if c.findings] == ["remarque"]
    assert {f.entity_type for c in first.columns for f in c.findings} == {"FR_PHONE"}
    if warehouse.dialect.name == "postgresql":
        assert "TABLESAMPLE BERNOULLI" in first.guarantee
    else:
        assert "every row read in key order" in first.guarantee
    assert [c.findings for c in again.columns] == [c.findings for c in first.columns]  # seeded: the same sample
