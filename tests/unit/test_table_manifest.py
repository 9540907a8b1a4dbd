"""The integrity of a SQL table (checks.integrity.table_hashing, table_manifest), on SQLite and PostgreSQL.

The corruption campaign changes a cell, inserts a row, deletes a row or changes a column's type, at random
(seeded), in a registered table: every change must be detected and localised to the one key range that holds it,
with the row count that tells an insertion from a deletion from a change.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from charter_guardrails.checks.integrity.manifest import canonical_json, check_signature, sign_manifest
from charter_guardrails.checks.integrity.table_hashing import encode_value, hash_table, key_from_json
from charter_guardrails.checks.integrity.table_manifest import compare_table, register_table
from charter_guardrails.core.errors import ConfigError, DatasetReadError, InfrastructureError

from tests.conftest import PG_ADMIN_URL, _create_pg_database, _drop_pg_database

ROWS = 1_200
PER_LEAF = 100
SECRET = "Jeanne Testard 06 12 34 56 78"
COLUMNS = ("id", "code", "amount", "score", "born", "seen", "active", "note")


def _rows() -> Iterator[tuple[Any, ...]]:
    rng = random.Random(7)
    for i in range(ROWS):
        note = SECRET if i == 5 else ("" if i % 7 == 0 else (None if i % 11 == 0 else f"note {rng.random():.6f}"))
        yield (
            2 * i + 10,  # gaps: a row can be inserted between two keys
            f"C{i:05d}",
            Decimal(f"{rng.randint(0, 99999)}.{rng.randint(0, 99):02d}"),
            rng.random(),
            date(1950, 1, 1) + timedelta(days=rng.randint(0, 20000)),
            datetime(2026, 1, 1, 8) + timedelta(seconds=rng.randint(0, 10**7)),
            i % 3 == 0,
            note,
        )


def _table(name: str, *, primary_key: bool = True, score: Any = None) -> Any:
    from sqlalchemy import Boolean, Column, Date, DateTime, Float, Integer, MetaData, Numeric, String, Table, Text

    return Table(
        name,
        MetaData(),
        Column("id", Integer, primary_key=primary_key, autoincrement=False),
        Column("code", String(12), nullable=False),
        Column("amount", Numeric(12, 2)),
        Column("score", score or Float),
        Column("born", Date),
        Column("seen", DateTime),
        Column("active", Boolean),
        Column("note", Text),
    )


def _create(engine: Any, name: str = "requests", *, primary_key: bool = True) -> None:
    table = _table(name, primary_key=primary_key)
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [dict(zip(COLUMNS, row, strict=True)) for row in _rows()])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    from sqlalchemy import create_engine

    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
        yield eng
        eng.dispose()
        return
    name = _create_pg_database()
    eng = create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield eng
    finally:
        eng.dispose()
        _drop_pg_database(name)


def _register(engine: Any, table: str = "requests", **kwargs: Any) -> dict[str, Any]:
    return register_table(
        engine,
        table,
        dataset="citizen_requests.training",
        use_case="citizen_requests",
        rows_per_leaf=PER_LEAF,
        **kwargs,
    )


def _range_of(document: dict[str, Any], key: int) -> int:
    """The index of the registered range that holds ``key``."""
    starts = [None if leaf["start"] is None else key_from_json(leaf["start"])[0] for leaf in document["leaves"]]
    return max(i for i, start in enumerate(starts) if start is None or start <= key)


def test_a_registered_table_is_intact_and_its_signed_manifest_holds_no_cell_value(
    engine: Any, charter_home: Path
) -> None:
    _create(engine)
    document = _register(engine)
    assert document["rows"] == ROWS
    assert len(document["leaves"]) == ROWS // PER_LEAF
    assert document["key_columns"] == ["id"]
    assert hash_table(engine, "requests", rows_per_leaf=PER_LEAF).root == document["merkle_root"]
    assert compare_table(engine, document).intact
    signed = sign_manifest(document)
    from charter_guardrails.core import keys

    public = keys.load_public_key()
    assert check_signature(signed.document, signed.signature, signed.key_id, {signed.key_id: public}) is None
    text = canonical_json(signed.document).decode()
    assert SECRET not in text
    assert "C00005" not in text  # a cell of a non-key column


def _change_cell(engine: Any, rng: random.Random) -> tuple[int, int, Any]:
    from sqlalchemy import select, update

    table, key = _table("requests"), 2 * rng.randrange(ROWS) + 10
    column = rng.choice(["amount", "score", "born", "active", "note"])
    with engine.begin() as conn:
        before = conn.execute(select(table).where(table.c.id == key)).one()._mapping
        other = {"amount": Decimal("0.01"), "score": -1.0, "born": date(1900, 1, 1), "note": "x"}
        value = (not before["active"]) if column == "active" else other[column]
        conn.execute(update(table).where(table.c.id == key).values({column: value}))
    return key, 0, lambda c: c.execute(update(table).where(table.c.id == key).values(dict(before)))


def _insert(engine: Any, rng: random.Random) -> tuple[int, int, Any]:
    from sqlalchemy import text

    key = 2 * rng.randrange(-1, ROWS + 5) + 11  # odd: between two keys, before the first or after the last
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO requests (id, code) VALUES (:k, 'NEW')"), {"k": key})
    return key, 1, lambda c: c.execute(text("DELETE FROM requests WHERE id = :k"), {"k": key})


def _delete(engine: Any, rng: random.Random) -> tuple[int, int, Any]:
    from sqlalchemy import delete, select

    table, key = _table("requests"), 2 * rng.randrange(ROWS) + 10
    with engine.begin() as conn:
        row = conn.execute(select(table).where(table.c.id == key)).one()
        conn.execute(delete(table).where(table.c.id == key))
    return key, -1, lambda c: c.execute(table.insert(), dict(row._mapping))


def test_corruption_campaign_every_change_is_detected_and_localised_to_its_key_range(engine: Any) -> None:
    _create(engine)
    document = _register(engine)
    rng = random.Random(20261205)
    # A changed cell, inserted and deleted rows: each trial is undone by its inverse before the next one.
    for trial in range(45):
        change = (_change_cell, _insert, _delete)[trial % 3]
        key, delta, undo = change(engine, rng)
        comparison = compare_table(engine, document)
        assert not comparison.intact, (change.__name__, key)
        assert comparison.schema_changes == []
        assert [r.index for r in comparison.ranges] == [_range_of(document, key)], (change.__name__, key)
        changed = comparison.ranges[0]
        assert changed.rows_now - changed.rows_registered == delta
        assert comparison.rows_now == ROWS + delta
        with engine.begin() as conn:
            undo(conn)
    assert compare_table(engine, document).intact
    # A changed type: the schema names the column, whatever the values read.
    _retype_score(engine)
    comparison = compare_table(engine, document)
    assert comparison.schema_changes
    assert all("score" in c for c in comparison.schema_changes), comparison.schema_changes
    assert comparison.facts()["schema_changes"] == comparison.schema_changes


def _retype_score(engine: Any) -> None:
    """``score`` becomes text (SQLite cannot alter a column's type: the table is rebuilt)."""
    from sqlalchemy import Text, text

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE requests ALTER COLUMN score TYPE TEXT"))
            return
        conn.execute(text("ALTER TABLE requests RENAME TO old_requests"))
        _table("requests", score=Text).create(conn)
        columns = ", ".join(COLUMNS)
        conn.execute(text(f"INSERT INTO requests ({columns}) SELECT {columns} FROM old_requests"))  # noqa: S608
        conn.execute(text("DROP TABLE old_requests"))


def test_null_and_empty_text_differ_and_every_type_has_its_tag() -> None:
    assert encode_value(None) != encode_value("")
    assert encode_value(1) != encode_value("1") != encode_value(1.0)
    assert encode_value(True) != encode_value(1)
    assert encode_value(Decimal("1.50")) != encode_value(1.5)
    assert encode_value(date(2026, 1, 2)) != encode_value("2026-01-02")
    assert encode_value(b"ab") != encode_value("ab")


def test_a_table_without_a_primary_key_is_refused_unless_an_ordering_key_is_named(engine: Any) -> None:
    _create(engine, "loose", primary_key=False)
    with pytest.raises(ConfigError, match=r"no primary key.*order_by"):
        _register(engine, "loose")
    document = _register(engine, "loose", order_by=["code"])  # a text key, read in code-point order
    assert document["key_columns"] == ["code"]
    assert compare_table(engine, document).intact
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO loose (id, code) VALUES (1, 'C00003')"))
    with pytest.raises(ConfigError, match="unique"):
        _register(engine, "loose", order_by=["code"])


def test_a_key_declared_personal_a_missing_table_and_an_unreachable_database_are_clear_errors(engine: Any) -> None:
    from sqlalchemy import create_engine

    _create(engine)
    with pytest.raises(ConfigError, match=r"personal data.*surrogate key"):
        _register(engine, order_by=["code"], personal_columns=["code", "note"])
    with pytest.raises(DatasetReadError, match="table nowhere does not exist") as missing:
        _register(engine, "nowhere")
    assert missing.value.kind == "missing"
    unreachable = create_engine("postgresql+psycopg://charter:s3cr3t-pw@127.0.0.1:9/ledger?connect_timeout=2")
    with pytest.raises(InfrastructureError, match="cannot be reached") as down:
        _register(unreachable)
    assert "s3cr3t-pw" not in str(down.value)
