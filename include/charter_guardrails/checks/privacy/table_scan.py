"""Personal-data scans of SQL tables, in the database where it can, in bounded memory here.

Every value is read as the database writes it as text (``CAST(col AS TEXT)``), as a file's cells are read as
written, and goes to the same sinks and the same analysis as a file (:mod:`.stream`):

- **sampling**: a simple random sample of ``n = sample_size(rate, confidence)`` rows, the file sampler's guarantee.
  On PostgreSQL the database draws first: ``TABLESAMPLE BERNOULLI (p) REPEATABLE (seed)`` keeps each row with
  probability ``p``, set so that about ``3n`` rows come back; the seeded bottom-k sampler
  (:class:`.sampler.Reservoir`) then keeps ``n`` of them. A Bernoulli sample of ``k ≥ n`` rows is, given ``k``, a
  simple random sample of the table, and a uniform ``n`` of those is one too. The chance that fewer than ``n``
  rows come back is below 10⁻¹⁰⁰ for any ``n`` of the policy's sizes (Chernoff); should it happen, the whole table
  is streamed through the sampler instead. Elsewhere (SQLite, a small table) every row streams through the sampler
  in key order, which draws the same sample as from the same rows in a file.
- **exhaustive**: each column's distinct values with their counts, counted by the database
  (``GROUP BY``) and streamed from a server-side cursor into :class:`.sampler.DistinctCounts`; each distinct
  value is analysed once, as for a file.

Unreachable databases and missing tables are the errors of :mod:`charter_guardrails.checks.integrity.table_hashing`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.integrity.table_hashing import table_columns
from charter_guardrails.checks.privacy.report import (
    EXHAUSTIVE_GUARANTEE,
    ScanOptions,
    ScanReport,
    sample_size,
    sampling_guarantee,
)
from charter_guardrails.checks.privacy.sampler import DistinctCounts, Reservoir
from charter_guardrails.checks.privacy.stream_read import Read

if TYPE_CHECKING:
    import pyarrow as pa

#: Rows (or distinct values) fetched from the server-side cursor at a time.
FETCH_ROWS = 10_000
#: The Bernoulli rate aims at this many times the sample size.
OVERSAMPLE = 3


def _source(table: str, columns: Sequence[str]) -> Any:
    from sqlalchemy import column
    from sqlalchemy import table as table_clause

    schema, _, name = table.rpartition(".")
    return table_clause(name, *(column(c) for c in columns), schema=schema or None)


def _batches(engine: Any, statement: Any, names: list[str]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, max_row_buffer=FETCH_ROWS).execute(statement)
        for rows in result.partitions(FETCH_ROWS):
            arrays = [pa.array(list(values), pa.string()) for values in zip(*rows, strict=True)]
            yield pa.RecordBatch.from_arrays(arrays, names=names)


def _as_text(source: Any, names: list[str]) -> list[Any]:
    from sqlalchemy import Text, cast

    return [cast(source.c[n], Text).label(n) for n in names]


def _count(engine: Any, source: Any) -> int:
    from sqlalchemy import func, select

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(source)).scalar_one())


def _sample(engine: Any, table: str, names: list[str], keys: list[str], options: ScanOptions) -> Read:
    """A simple random sample of ``n`` rows: Bernoulli in PostgreSQL then bottom-k, or bottom-k over every row."""
    from sqlalchemy import func, literal, select

    source = _source(table, list(dict.fromkeys([*names, *keys])))
    total, n = _count(engine, source), sample_size(options.min_detectable_rate, options.confidence)
    reservoir, how = Reservoir(n, options.seed), "every row read in key order"
    if engine.dialect.name == "postgresql" and total > OVERSAMPLE * n:
        percent = 100.0 * OVERSAMPLE * n / total
        drawn = source.tablesample(func.bernoulli(percent), seed=literal(options.seed))
        for batch in _batches(engine, select(*_as_text(drawn, names)), names):
            reservoir.add(batch)
        how = f"TABLESAMPLE BERNOULLI ({percent:.4g} %) in the database, then {n} of its rows at random"
        if reservoir.rows_seen < n:  # about never (see the module's docstring): read every row instead
            reservoir, how = Reservoir(n, options.seed), "every row read (the database's sample fell short)"
    if how.startswith("every row"):
        ordered = select(*_as_text(source, names)).order_by(*(source.c[k] for k in keys))
        for batch in _batches(engine, ordered, names):
            reservoir.add(batch)
    counts = DistinctCounts()
    if reservoir.table is not None:
        counts.add_table(reservoir.table)
    else:
        counts.start(names)
    return Read(counts, total, counts.rows, sampling_guarantee(options, total, how))


def _exhaustive(engine: Any, table: str, names: list[str]) -> Read:
    """Each column's distinct values and counts, grouped by the database, streamed."""
    import pyarrow as pa
    from sqlalchemy import func, select

    source = _source(table, names)
    total = _count(engine, source)
    counts = DistinctCounts()
    counts.start(names, rows=total)
    for name in names:
        value = _as_text(source, [name])[0]
        grouped = select(value, func.count().label("n")).where(source.c[name].is_not(None)).group_by(value)
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, max_row_buffer=FETCH_ROWS).execute(grouped)
            for rows in result.partitions(FETCH_ROWS):
                texts, numbers = zip(*rows, strict=True)
                counts.add_counted(name, pa.array(list(texts), pa.string()), pa.array(list(numbers), pa.int64()))
    return Read(counts, total, total, EXHAUSTIVE_GUARANTEE)


def scan_table(
    engine: Any,
    table: str,
    options: ScanOptions | None = None,
    *,
    columns: Sequence[str] | None = None,
    source: str | None = None,
) -> ScanReport:
    """Scan ``table`` for personal data (every column, or ``columns``), as :func:`.stream.scan_file` scans a file."""
    from sqlalchemy import inspect

    from charter_guardrails.checks.privacy.stream import analyse_read, scan_report

    options = options or ScanOptions()
    started = time.monotonic()
    every = [name for name, _ in table_columns(engine, table)]
    names = list(columns) if columns else every
    schema, _, bare = table.rpartition(".")
    keys = list(inspect(engine).get_pk_constraint(bare, schema=schema or None).get("constrained_columns") or [])
    if options.mode == "sampling":
        read = _sample(engine, table, names, keys or names, options)
    else:
        read = _exhaustive(engine, table, names)
    label = source or table
    return scan_report(read, analyse_read(read, options, label, started), options, label, started)
