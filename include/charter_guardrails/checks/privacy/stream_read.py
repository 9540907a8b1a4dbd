"""Reading a CSV or Parquet file as a stream of Arrow record batches, for the personal-data scan: only what the
scan's mode needs is kept (:mod:`.sampler`), every column as text.

CSV files are parsed by pyarrow (``open_csv``, in the dialect the policy declares or the one
:func:`charter_guardrails.readers.files.detect_csv_dialect` guessed). What pyarrow refuses or reads otherwise
than the readers (a short last row, a malformed quote, bytes the encoding cannot decode, a header pandas would
rename, a cell over the readers' bound) is read again from the start by the readers' own pandas parser in chunks
(:func:`charter_guardrails.readers.files.iter_csv`), which either reads it as every reader does or raises their
error: the same message, with line numbers and no value. pyarrow's own messages, which quote the row, never
reach the user.

A Parquet file tells its row count in its footer: a sample's row positions are drawn uniformly from all rows
first, and only the row groups holding a drawn row are read.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from charter_guardrails.checks.privacy.progress import ReadProgress
from charter_guardrails.checks.privacy.report import (
    EXHAUSTIVE_GUARANTEE,
    ScanOptions,
    Window,
    sample_size,
    sampling_guarantee,
)
from charter_guardrails.checks.privacy.sampler import DistinctCounts, Reservoir, RowWindow, as_text

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from charter_guardrails.core.policy_models import CsvDialect

log = logging.getLogger(__name__)

#: Bytes of CSV pyarrow parses per batch (its default). The reader's memory grows with it (blocks in flight, and
#: what its allocator keeps): about 140 MiB at 1 MiB, 550 MiB at 16 MiB, for the same speed. A longer row makes
#: its batch longer; a cell over the readers' bound sends the file to pandas, which refuses it and says where.
BLOCK_BYTES = 1 << 20
#: Rows per Parquet batch, and per chunk of the pandas parser when pyarrow refuses a CSV file.
BATCH_ROWS = 65_536
FALLBACK_CHUNK_ROWS = 20_000
#: Parquet read buffer: column chunks are read in pieces of this size, not whole.
PARQUET_BUFFER_BYTES = 4 << 20
CSV_SAMPLE = "a seeded uniform reservoir sample of the whole file, read once as a stream"


class _Refused(Exception):
    """pyarrow refused the file, or would read it otherwise than the readers do: not an error for the user, the
    scan reads the file again with the readers' pandas parser."""


@dataclass
class Read:
    """What reading kept: the distinct values of the rows to analyse, and what the choice of rows guarantees."""

    counts: DistinctCounts
    rows: int
    scanned: int
    guarantee: str
    #: Read by pyarrow (else by the pandas parser).
    arrow: bool = True


Sink = Reservoir | DistinctCounts | RowWindow


def _sink(options: ScanOptions, window: Window | None = None) -> Sink:
    """What keeps the rows to analyse; for a partition, its share of the sample (or its distinct values) only."""
    if window is None:
        if options.mode == "sampling":
            return Reservoir(sample_size(options.min_detectable_rate, options.confidence), options.seed)
        return DistinctCounts()
    inner = (
        Reservoir(window.sample_size(options), window.seed(options)) if options.mode == "sampling" else DistinctCounts()
    )
    return RowWindow(inner, window.start, window.stop)


def _done(sink: Sink) -> bool:
    """A partition's last row was read: the rest of the file is not."""
    return isinstance(sink, RowWindow) and sink.done


def _kept(sink: Sink, options: ScanOptions, how: str, window: Window | None = None) -> Read:
    """The rows to analyse as distinct counts: the sample's (counted now), or those counted while reading."""
    if isinstance(sink, RowWindow):
        sink = sink.sink
    if isinstance(sink, DistinctCounts):
        return Read(sink, sink.rows, sink.rows, EXHAUSTIVE_GUARANTEE)
    counts = DistinctCounts()
    if sink.table is not None:
        counts.add_table(sink.table)
    if window is not None:
        how = f"partition {window.index + 1} of {window.count}: its proportional share of the sample"
        guarantee = f"sampling: {counts.rows} of {sink.rows_seen} rows drawn at random ({how})"
        return Read(counts, sink.rows_seen, counts.rows, guarantee)
    return Read(counts, sink.rows_seen, counts.rows, sampling_guarantee(options, sink.rows_seen, how))


# ------------------------------------------------------------------------------------------------
# CSV


def _header(path: Path, dialect: CsvDialect, encoding: str) -> list[str]:
    """The column names as pandas would read them, or :class:`_Refused` when pandas would read them otherwise
    (blank or duplicate names, which it renames; a lone column whose name holds another separator)."""
    with path.open(encoding=encoding, newline="") as handle:
        names = next(csv.reader(handle, delimiter=dialect.separator, quotechar=dialect.quotechar), [])
    others = [sep for sep in ";,\t|" if sep != dialect.separator]
    if not names or "" in names or len(set(names)) < len(names):
        raise _Refused("header")
    if len(names) == 1 and any(sep in names[0] for sep in others):
        raise _Refused("header")
    return names


def _arrow_csv(
    path: Path, dialect: CsvDialect, encoding: str, columns: Sequence[str] | None, progress: ReadProgress
) -> Iterator[pa.RecordBatch]:
    """The file's batches from pyarrow (a first empty batch gives the columns), every column as text."""
    import codecs

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from charter_guardrails.readers.files import MAX_CELL_CHARS

    try:
        names = _header(path, dialect, encoding)
        progress.columns = len(names) if columns is None else len(columns)
        codec = codecs.lookup(encoding).name
        read = pacsv.ReadOptions(encoding="utf8" if codec.startswith("utf-8") else codec, block_size=BLOCK_BYTES)
        parse = pacsv.ParseOptions(delimiter=dialect.separator, quote_char=dialect.quotechar, newlines_in_values=True)
        convert = pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
            include_columns=list(columns) if columns is not None else None,
        )
        check_cells = path.stat().st_size > MAX_CELL_CHARS  # else no cell can be longer than the bound
        # a native file: its reads take no GIL (a Python file's would wait on the NER model loading beside)
        with pa.OSFile(str(path)) as handle, pacsv.open_csv(handle, read, parse, convert) as reader:
            if columns is None and reader.schema.names != names:
                raise _Refused("header")
            yield pa.RecordBatch.from_pylist([], schema=reader.schema)
            for batch in reader:
                if check_cells and _longer_than(batch, MAX_CELL_CHARS):
                    raise _Refused("cell")  # the readers refuse it, and say where
                progress.advance(batch.num_rows, handle.tell())
                yield batch
    except (pa.ArrowException, ValueError, csv.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise _Refused(type(exc).__name__) from None  # pyarrow's message quotes the row: never shown


def _longer_than(batch: pa.RecordBatch, bound: int) -> bool:
    """Whether a cell of the batch holds more than ``bound`` bytes; a column whose text takes no more than that
    in all is not measured cell by cell (with 1 MiB blocks, none is)."""
    import pyarrow.compute as pc

    for column in batch.columns:
        data = column.buffers()[2] if len(column.buffers()) > 2 else None
        if data is not None and data.size > bound and pc.max(pc.binary_length(column)).as_py() > bound:
            return True
    return False


def _pandas_csv(
    path: Path, dialect: CsvDialect, columns: Sequence[str] | None, progress: ReadProgress
) -> Iterator[pa.RecordBatch]:
    """The file's batches from the readers' pandas parser, in chunks: their errors, their bounds."""
    import pyarrow as pa

    from charter_guardrails.readers.files import iter_csv

    usecols = list(columns) if columns is not None else None
    for chunk in iter_csv(path, dialect, chunk_rows=FALLBACK_CHUNK_ROWS, usecols=usecols):
        arrays = [as_text(pa.array(chunk[c].to_numpy(dtype=object), from_pandas=True)) for c in chunk.columns]
        progress.columns = len(arrays)
        progress.advance(len(chunk))
        yield pa.RecordBatch.from_arrays(arrays, names=[str(c) for c in chunk.columns])


def read_csv(
    path: Path,
    dialect: CsvDialect,
    options: ScanOptions,
    columns: Sequence[str] | None,
    progress: ReadProgress,
    *,
    arrow: bool = True,
    window: Window | None = None,
) -> Read:
    """Read a CSV file as a stream, with pyarrow (unless ``arrow`` is false) or, where pyarrow refuses, pandas.

    ``window``: keep only the rows of this partition (the file is read up to its last row)."""
    from charter_guardrails.readers.files import check_csv

    encoding = check_csv(path, dialect)
    sink = _sink(options, window)
    try:
        if not arrow:
            raise _Refused("refused on a previous pass")
        for batch in _arrow_csv(path, dialect, encoding, columns, progress):
            sink.add(batch)
            if _done(sink):
                break
    except _Refused as exc:
        log.info("personal data scan of %s: read again with the pandas parser (pyarrow: %s)", path.name, exc)
        progress.restart()
        sink = _sink(options, window)
        for batch in _pandas_csv(path, dialect, columns, progress):
            sink.add(batch)
            if _done(sink):
                break
        arrow = False
    read = _kept(sink, options, CSV_SAMPLE, window)
    read.arrow = arrow
    return read


def column_weights(
    path: Path, parquet: bool, dialect: CsvDialect | None, columns: Sequence[str] | None
) -> tuple[list[str], list[float]] | None:
    """The columns a scan reads and an estimate of their bytes in the file (Parquet: uncompressed, from the
    footer; CSV: the file's size shared as in its first MiB); ``None`` when the header cannot be read here."""
    import codecs

    from charter_guardrails.readers.dialect import SNIFF_BYTES

    try:
        if parquet:
            return None if path.is_dir() else _parquet_weights(path, columns)
        assert dialect is not None  # noqa: S101 - a CSV scan has its dialect before reading
        encoding = "utf-8-sig" if codecs.lookup(dialect.encoding).name == "utf-8" else dialect.encoding
        names = _header(path, dialect, encoding)
        with path.open("rb") as handle:
            text = handle.read(SNIFF_BYTES).decode(encoding, errors="replace")
        sizes = [0.0] * len(names)
        for row in list(csv.reader(text.splitlines(), delimiter=dialect.separator, quotechar=dialect.quotechar))[1:-1]:
            for i, cell in enumerate(row[: len(names)]):
                sizes[i] += len(cell) + 1
    except (_Refused, OSError, ValueError, csv.Error, LookupError):
        return None
    total, size = sum(sizes) or 1.0, path.stat().st_size
    weights = [(w if sum(sizes) else 1.0) / total * size for w in sizes]
    if columns is None:
        return names, weights
    return list(columns), [weights[names.index(c)] if c in names else 0.0 for c in columns]


def _parquet_weights(path: Path, columns: Sequence[str] | None) -> tuple[list[str], list[float]]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    names = _data_columns(file.schema_arrow, columns)
    sizes = dict.fromkeys(names, 0.0)
    for g in range(file.metadata.num_row_groups):
        group = file.metadata.row_group(g)
        for j in range(group.num_columns):
            name = group.column(j).path_in_schema.split(".")[0]
            if name in sizes:
                sizes[name] += group.column(j).total_uncompressed_size
    return names, [sizes[n] for n in names]


# ------------------------------------------------------------------------------------------------
# Parquet


def _data_columns(schema: pa.Schema, columns: Sequence[str] | None) -> list[str]:
    """The columns to read: those asked, else all but the index pandas stored (it is not a column of the frame)."""
    if columns is not None:
        return list(columns)
    index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
    return [name for name in schema.names if name not in index]


def _sample_row_groups(
    file: pq.ParquetFile, names: list[str], options: ScanOptions, progress: ReadProgress, window: Window | None
) -> Read:
    """A simple random sample of the file's rows (or of a partition's), reading only the row groups that hold a
    drawn row."""
    import numpy as np
    import pyarrow as pa

    sizes = [file.metadata.row_group(g).num_rows for g in range(file.metadata.num_row_groups)]
    starts = np.cumsum([0, *sizes])
    total = int(starts[-1])
    if window is not None:  # the partition's share of the sample, among its rows
        n = min(window.sample_size(options), window.rows)
        rng = np.random.default_rng(window.seed(options))
        drawn = np.sort(rng.choice(window.rows, size=n, replace=False)) + window.start
        total = window.rows
    else:
        n = min(sample_size(options.min_detectable_rate, options.confidence), total)
        drawn = np.sort(np.random.default_rng(options.seed).choice(total, size=n, replace=False))
    groups = np.searchsorted(starts, drawn, side="right") - 1
    counts = DistinctCounts()
    counts.add(pa.RecordBatch.from_pylist([], schema=pa.schema([(name, pa.string()) for name in names])))
    for g in np.unique(groups):
        wanted, offset = drawn[groups == g] - starts[g], 0
        for batch in file.iter_batches(batch_size=BATCH_ROWS, row_groups=[int(g)], columns=names):
            inside = wanted[(wanted >= offset) & (wanted < offset + batch.num_rows)] - offset
            offset += batch.num_rows
            progress.advance(batch.num_rows)
            if len(inside):
                taken = batch.take(pa.array(inside))
                counts.add(pa.RecordBatch.from_arrays([as_text(c) for c in taken.columns], names=names))
    how = (
        f"positions drawn uniformly among all rows from the row counts of the footer; only the "
        f"{len(np.unique(groups))} of {len(sizes)} row groups holding a drawn row were read"
    )
    if window is not None:
        how = f"partition {window.index + 1} of {window.count}: its proportional share of the sample; {how}"
        return Read(counts, total, n, f"sampling: {n} of {total} rows drawn at random ({how})")
    return Read(counts, total, n, sampling_guarantee(options, total, how))


def _window_groups(file: pq.ParquetFile, window: Window) -> tuple[list[int], Window]:
    """The row groups holding a row of ``window``, and the window counted from the first of them."""
    groups, first, start = [], None, 0
    for g in range(file.metadata.num_row_groups):
        stop = start + file.metadata.row_group(g).num_rows
        if start < window.stop and stop > window.start:
            groups.append(g)
            first = start if first is None else first
        start = stop
    offset = first or 0
    shifted = Window(window.index, window.count, window.start - offset, window.stop - offset, window.total)
    return groups, shifted


def read_parquet(
    path: Path,
    options: ScanOptions,
    columns: Sequence[str] | None,
    progress: ReadProgress,
    *,
    window: Window | None = None,
) -> Read:
    """Read a Parquet file (or a folder of them) as a stream; ``window``: keep only the rows of this partition."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from charter_guardrails.readers.files import check_parquet, parquet_errors

    check_parquet(path)
    with parquet_errors(path):
        if not path.is_dir():
            file = pq.ParquetFile(path, buffer_size=PARQUET_BUFFER_BYTES)
            names = _data_columns(file.schema_arrow, columns)
            progress.columns = len(names)
            progress.expect(rows=file.metadata.num_rows)
            if options.mode == "sampling":
                return _sample_row_groups(file, names, options, progress, window)
            groups = None
            if window is not None:  # only the row groups of the partition are read
                groups, window = _window_groups(file, window)
            batches: Iterator[pa.RecordBatch] = file.iter_batches(
                batch_size=BATCH_ROWS, columns=names, row_groups=groups
            )
        else:  # a folder of Parquet files (partitions), as pandas reads it: a reservoir over all of them
            dataset = ds.dataset(path, format="parquet", partitioning="hive")
            names = _data_columns(dataset.schema, columns)
            progress.columns = len(names)
            batches = dataset.to_batches(columns=names, batch_size=BATCH_ROWS)
        sink = _sink(options, window)
        for batch in batches:
            progress.advance(batch.num_rows)
            sink.add(pa.RecordBatch.from_arrays([as_text(c) for c in batch.columns], names=names))
            if _done(sink):
                break
        how = "a seeded uniform reservoir sample of all the rows of the folder's files"
        return _kept(sink, options, how, window)
