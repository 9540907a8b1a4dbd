"""A ``format: sql`` dataset for the tests: ``citizen_requests.training`` as a table of the data database.

The policies folder is a copy of the shipped one in which the training dataset is the table ``TABLE`` (with a
surrogate key ``row_id`` declared as a non-personal column). The table is created on SQLite (a file of the test)
or in the test's own PostgreSQL database (the ledger's, dropped after the test); ``SECRET`` is a cell value that
must never reach a verdict, an incident or a manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

USE_CASE = "citizen_requests"
DATASET = "training"
REF = f"{USE_CASE}.{DATASET}"
TABLE = "citizen_requests_rows"
ROWS = 300
PER_LEAF = 50
SECRET = "Zéphyrine Quatrebarbe 06 11 22 33 44"
COLUMNS = ("row_id", "request_id", "received_at", "message", "arrondissement", "channel", "age_band", "category")


def write_policies(folder: Path, *, order_by: list[str] | None = None) -> Path:
    """The shipped policies, with ``citizen_requests.training`` a table (``order_by`` as given)."""
    import yaml
    from charter_demo.table_training import table_policies

    table_policies(Path(__file__).resolve().parents[1] / "include" / "policies", folder, TABLE)
    if order_by is not None:
        path = folder / f"{USE_CASE}.yaml"
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        next(d for d in document["datasets"] if d["id"] == DATASET)["order_by"] = order_by
        path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


def data_url(ledger_url: str, folder: Path) -> str:
    """A SQLite file beside the ledger, or the ledger's own PostgreSQL test database."""
    return f"sqlite:///{folder / 'warehouse.db'}" if ledger_url.startswith("sqlite") else ledger_url


def engine_of(url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(url)


def _table(primary_key: str | None) -> Any:
    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text

    return Table(
        TABLE,
        MetaData(),
        Column("row_id", Integer, primary_key=primary_key == "row_id", autoincrement=False, nullable=False),
        Column("request_id", String(20), primary_key=primary_key == "request_id", nullable=False),
        Column("received_at", DateTime, nullable=False),
        Column("message", Text, nullable=False),
        Column("arrondissement", String(8), nullable=False),
        Column("channel", String(16), nullable=False),
        Column("age_band", String(8)),
        Column("category", String(32), nullable=False),
    )


def create_table(url: str, *, primary_key: str | None = "row_id") -> None:
    """``ROWS`` rows; ``row_id`` goes by tens, so a row can be inserted between two keys."""
    table, engine = _table(primary_key), engine_of(url)
    try:
        table.create(engine)
        rows = [
            {
                "row_id": 10 * i + 10,
                "request_id": f"R{i:05d}",
                "received_at": datetime(2026, 3, 1, 8) + timedelta(minutes=37 * i),
                "message": SECRET if i == 7 else f"demande de ramassage numéro {i}",
                "arrondissement": f"{1 + i % 16}e",
                "channel": ("web", "courrier", "guichet")[i % 3],
                "age_band": None if i % 5 == 0 else ("18-29", "30-44", "45-59", "60+")[i % 4],
                "category": ("voirie", "propreté", "éclairage")[i % 3],
            }
            for i in range(ROWS)
        ]
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
    finally:
        engine.dispose()


def execute(url: str, statement: str) -> None:
    from sqlalchemy import text

    engine = engine_of(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def range_of(document: dict[str, Any], key: int) -> int:
    """The index of the registered key range that holds ``row_id`` ``key``."""
    from charter_guardrails.checks.integrity.table_hashing import key_from_json

    starts = [None if leaf["start"] is None else key_from_json(leaf["start"])[0] for leaf in document["leaves"]]
    return max(i for i, start in enumerate(starts) if start is None or start <= key)


#: The corruptions: a changed cell and an inserted row that carry ``SECRET`` (the verdict must not repeat it), and
#: the deletion of the row that holds it; each with the ``row_id`` it touches and the rows it adds.
CORRUPTIONS = {"changed cell": (1210, 0), "inserted row": (2315, 1), "deleted row": (80, -1)}


def corrupt(url: str, kind: str) -> Callable[[], None]:
    """Apply one of :data:`CORRUPTIONS`; return what undoes it (the table then hashes as before)."""
    from sqlalchemy import delete, insert, select, update

    table, (key, _delta) = _table(None), CORRUPTIONS[kind]
    where = table.c.row_id == key
    engine = engine_of(url)
    try:
        with engine.begin() as conn:
            if kind == "changed cell":
                before = conn.execute(select(table.c.message).where(where)).scalar_one()
                conn.execute(update(table).where(where).values(message=SECRET))
                undo = update(table).where(where).values(message=before)
            elif kind == "inserted row":
                row = conn.execute(select(table).where(table.c.row_id == key - 5)).one()._mapping
                conn.execute(insert(table).values({**row, "row_id": key, "request_id": "R99999", "message": SECRET}))
                undo = delete(table).where(where)
            else:
                row = conn.execute(select(table).where(where)).one()._mapping
                assert row["message"] == SECRET
                conn.execute(delete(table).where(where))
                undo = insert(table).values(dict(row))
    finally:
        engine.dispose()

    def undone() -> None:
        again = engine_of(url)
        try:
            with again.begin() as conn:
                conn.execute(undo)
        finally:
            again.dispose()

    return undone
