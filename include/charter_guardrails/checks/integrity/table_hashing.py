"""Integrity of a SQL table: a Merkle tree of its rows in key order, whose leaves are contiguous key ranges.

A file is hashed as bytes; a table has no bytes of its own (its pages move with every ``VACUUM``), so its rows
are: read in the order of the primary key (or of the ordering key the policy names), each row encoded
canonically, and the encodings of the rows of one key range hashed into one leaf (``H(0x00 ‖ rows)``, as the
file chunks are, RFC 6962). The root is the Merkle Tree Hash of the leaves.

**Canonical encoding.** Each value is a type tag and its text: ``N`` for NULL (distinct from an empty string,
``s`` with no text), ``b`` booleans, ``i`` integers, ``f`` floats (``float.hex``, exact), ``d`` decimals,
``s`` text, ``x`` bytes, ``D``/``t``/``T`` dates, timestamps and times (ISO 8601), ``u`` UUIDs; each is
length-prefixed, so no two rows share an encoding. The schema (column names and database types, in table order)
has a fingerprint of its own: a changed type is a schema change even where the values read the same.

**Key ranges.** At registration the rows are cut every ``rows_per_leaf`` rows and the key of the first row of
each leaf after the first is kept as a boundary. Verification assigns each row to the leaf whose range holds its
key, whatever was inserted or deleted since: a changed, inserted or deleted row changes only the digest (and
perhaps the row count) of its own range, which :func:`compare_table` names. Keys are compared in Python on the
values the driver returns; text keys are read in code-point order (``COLLATE "C"`` on PostgreSQL, SQLite's
default ``BINARY``) so that the database's order is Python's. Boundaries are key values and go into the signed
manifest: a key column the policy declares as personal data is refused (name a surrogate key instead).

Memory is bounded: rows are streamed from a server-side cursor (``stream_results``) in batches. A
:class:`RowSink` given to :func:`hash_table` sees every row of that one pass, after it is hashed: what the
pseudonymised copy of a verified table is written from (:mod:`charter_guardrails.checks.privacy.pseudonymise_table`),
so that the rows it uses are the rows whose root is compared.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Protocol

from charter_guardrails.checks.integrity.hashing import DEFAULT_ALGORITHM, LEAF_PREFIX, hasher, merkle_root
from charter_guardrails.core.errors import ConfigError, DatasetReadError, InfrastructureError

#: Rows per leaf at registration: a mismatch is localised to a range of at most this many rows (about 2 MB of
#: typical rows to re-read when inspecting it).
DEFAULT_ROWS_PER_LEAF = 10_000
#: Rows fetched from the server-side cursor at a time.
FETCH_ROWS = 5_000


class RowSink(Protocol):
    """What sees the rows of a hashing pass: the table's column names first, then each row (all its columns, in
    table order), in key order, once it is hashed."""

    def columns(self, names: list[str]) -> None: ...

    def row(self, values: tuple[Any, ...]) -> None: ...


def _tagged(value: Any) -> tuple[bytes, str]:
    """The type tag and canonical text of one value."""
    if value is None:
        return b"N", ""
    if isinstance(value, bool):
        return b"b", "1" if value else "0"
    if isinstance(value, int):
        return b"i", str(value)
    if isinstance(value, float):
        return b"f", value.hex()
    if isinstance(value, Decimal):
        return b"d", str(value)
    if isinstance(value, str):
        return b"s", value
    if isinstance(value, datetime):  # before date: a datetime is a date
        return b"t", value.isoformat()
    if isinstance(value, date):
        return b"D", value.isoformat()
    if isinstance(value, time):
        return b"T", value.isoformat()
    if isinstance(value, uuid.UUID):
        return b"u", str(value)
    return b"o", f"{type(value).__name__}:{json.dumps(value, sort_keys=True, default=str)}"


def encode_value(value: Any) -> bytes:
    """``tag ‖ length (8 bytes, big-endian) ‖ payload``: the canonical encoding of one value."""
    if isinstance(value, bytes | bytearray | memoryview):
        payload, tag = bytes(value), b"x"
    else:
        tag, text = _tagged(value)
        payload = text.encode("utf-8")
    return tag + len(payload).to_bytes(8, "big") + payload


def encode_row(values: Sequence[Any]) -> bytes:
    """The canonical encoding of one row, length-prefixed as a whole."""
    body = b"".join(encode_value(v) for v in values)
    return len(body).to_bytes(8, "big") + body


def key_to_json(key: Sequence[Any]) -> list[list[str]]:
    """A key as the manifest stores it: each value with its type tag."""
    return [[tag.decode(), text] for tag, text in (_tagged(v) for v in key)]


_DECODERS: dict[str, Any] = {
    "b": lambda t: t == "1",
    "i": int,
    "f": float.fromhex,
    "d": Decimal,
    "s": str,
    "t": datetime.fromisoformat,
    "D": date.fromisoformat,
    "T": time.fromisoformat,
    "u": uuid.UUID,
}


def key_from_json(stored: Sequence[Sequence[str]]) -> tuple[Any, ...]:
    """The key :func:`key_to_json` stored, as the values the driver returns."""
    try:
        return tuple(_DECODERS[tag](text) for tag, text in stored)
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"a key boundary of the table manifest cannot be read ({exc}); register the table again"
        ) from None


@dataclass(frozen=True)
class TableLeaf:
    rows: int
    digest: str
    #: The first key of the range (None: from the start of the table); the end is the next leaf's start.
    start: tuple[Any, ...] | None


@dataclass(frozen=True)
class TableDigest:
    table: str
    key_columns: list[str]
    schema: list[tuple[str, str]]
    algorithm: str
    leaves: list[TableLeaf] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(leaf.rows for leaf in self.leaves)

    @property
    def root(self) -> str:
        return merkle_root([bytes.fromhex(leaf.digest) for leaf in self.leaves], self.algorithm).hex()

    @property
    def schema_fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.schema, separators=(",", ":")).encode("utf-8")).hexdigest()


def _split(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return schema or None, name


def _key_columns(inspector: Any, table: str, columns: list[str], order_by: Sequence[str] | None) -> list[str]:
    schema, name = _split(table)
    if order_by:
        unknown = [c for c in order_by if c not in columns]
        if unknown:
            raise ConfigError(f"table {table}: the ordering key names columns it does not have: {unknown}")
        return list(order_by)
    primary = list(inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or [])
    if not primary:
        raise ConfigError(
            f"table {table} has no primary key, so its rows have no stable order to hash. Add a primary key, or "
            "name a unique, non-null ordering key in the dataset's policy (order_by)."
        )
    return primary


def _inspect(engine: Any, table: str) -> tuple[Any, list[tuple[str, str]]]:
    from sqlalchemy import inspect
    from sqlalchemy.exc import OperationalError

    from charter_guardrails.ledger.db import redact_url

    schema, name = _split(table)
    try:
        inspector = inspect(engine)
        if not inspector.has_table(name, schema=schema):
            raise DatasetReadError("missing", f"table {table} does not exist in {redact_url(str(engine.url))}")
        reflected = inspector.get_columns(name, schema=schema)
    except OperationalError as exc:
        raise InfrastructureError(
            f"the database {redact_url(str(engine.url))} cannot be reached ({type(exc.orig).__name__}); "
            "the task is retried: check that it is up and that the connection's host and port are right"
        ) from None
    return inspector, [(str(c["name"]), str(c["type"].compile(dialect=engine.dialect))) for c in reflected]


def table_columns(engine: Any, table: str) -> list[tuple[str, str]]:
    """The table's schema: the name and database type of each column, in table order."""
    return _inspect(engine, table)[1]


def describe(engine: Any, table: str, order_by: Sequence[str] | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """The table's schema and its key columns (``order_by``, else the primary key)."""
    inspector, columns = _inspect(engine, table)
    return columns, _key_columns(inspector, table, [c for c, _ in columns], order_by)


def stream_rows(
    engine: Any, table: str, columns: list[str], keys: list[str], text_keys: set[str]
) -> Iterator[tuple[Any, ...]]:
    """Every row of ``table`` (the ``columns``), in key order (code-point order for the ``text_keys``), streamed."""
    from sqlalchemy import column, select
    from sqlalchemy import table as table_clause

    schema, name = _split(table)
    source = table_clause(name, *(column(c) for c in columns), schema=schema)
    postgres = engine.dialect.name == "postgresql"
    order = [source.c[k].collate("C") if postgres and k in text_keys else source.c[k] for k in keys]
    statement = select(*(source.c[c] for c in columns)).order_by(*order)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, max_row_buffer=FETCH_ROWS).execute(statement)
        for batch in result.partitions(FETCH_ROWS):
            yield from (tuple(row) for row in batch)


def _text_type(type_name: str) -> bool:
    return any(word in type_name.upper() for word in ("CHAR", "TEXT", "STRING", "CLOB", "CITEXT"))


class _Leaves:
    """Leaves being built: a leaf is closed at a boundary (verification) or after ``rows_per_leaf`` rows."""

    def __init__(self, algorithm: str, rows_per_leaf: int, starts: list[tuple[Any, ...] | None] | None) -> None:
        self.algorithm, self.rows_per_leaf, self.starts = algorithm, rows_per_leaf, starts
        self.done: list[TableLeaf] = []
        self._open(None)

    def _open(self, start: tuple[Any, ...] | None) -> None:
        self.hash, self.rows, self.start = hasher(self.algorithm)(), 0, start
        self.hash.update(LEAF_PREFIX)

    def _close(self) -> None:
        self.done.append(TableLeaf(self.rows, self.hash.hexdigest(), self.start))

    def add(self, key: tuple[Any, ...], encoded: bytes) -> None:
        if self.starts is None:
            if self.rows == self.rows_per_leaf:
                self._close()
                self._open(key)
        else:
            while len(self.done) + 1 < len(self.starts) and key >= self.starts[len(self.done) + 1]:  # type: ignore[operator]
                self._close()
                self._open(self.starts[len(self.done)])
        self.hash.update(encoded)
        self.rows += 1

    def finish(self) -> list[TableLeaf]:
        self._close()
        while self.starts is not None and len(self.done) < len(self.starts):  # ranges left with no row now
            self._open(self.starts[len(self.done)])
            self._close()
        return self.done


def hash_table(
    engine: Any,
    table: str,
    *,
    order_by: Sequence[str] | None = None,
    starts: list[tuple[Any, ...] | None] | None = None,
    rows_per_leaf: int = DEFAULT_ROWS_PER_LEAF,
    personal_columns: Sequence[str] = (),
    algorithm: str = DEFAULT_ALGORITHM,
    sink: RowSink | None = None,
) -> TableDigest:
    """Hash ``table`` in key order: leaves every ``rows_per_leaf`` rows, or over the key ranges that ``starts``
    (the first key of each leaf, ``None`` for the first) gave at registration. ``sink`` sees each row hashed."""
    schema, keys = describe(engine, table, order_by)
    personal = sorted(set(keys) & set(personal_columns))
    if personal:
        raise ConfigError(
            f"table {table}: the ordering key {personal} is declared as personal data, and the manifest would store "
            "key values; name a surrogate key (an id) as the dataset's order_by"
        )
    names = [c for c, _ in schema]
    positions = [names.index(k) for k in keys]
    text_keys = {c for c, kind in schema if c in keys and _text_type(kind)}
    leaves, previous = _Leaves(algorithm, rows_per_leaf, starts), None
    if sink is not None:
        sink.columns(names)
    for row in stream_rows(engine, table, names, keys, text_keys):
        key = tuple(row[i] for i in positions)
        if any(v is None for v in key):
            raise ConfigError(f"table {table}: a row has no value in its ordering key {keys}; the key must be non-null")
        if previous is not None and key <= previous:
            raise ConfigError(
                f"table {table}: two rows share the ordering key {keys}, or come back out of order; "
                "the ordering key must be unique (a primary key is)"
            )
        leaves.add(key, encode_row(row))
        if sink is not None:
            sink.row(row)
        previous = key
    digest = TableDigest(table, keys, schema, algorithm, leaves.finish())
    if starts is None and digest.rows == 0:
        raise DatasetReadError("empty", f"table {table} has no row: there is nothing to register", path=table)
    return digest
