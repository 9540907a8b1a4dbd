"""Rewriting one file without a person's rows: atomically (a new file, fsync, rename), in bounded memory.

- **CSV**: the rows to drop are the ones :func:`.scan.scan` found (read through the project's CSV reader, in
  the dataset's dialect). The file is then copied record by record, as bytes, leaving those rows out: every
  other row stays byte for byte as delivered (quoting, decimal commas, line ends, BOM), which no
  re-serialisation by pandas or :mod:`csv` would guarantee. A record ends at a line end outside quotes
  (RFC 4180: its quote characters are balanced); blank lines are kept and, as the reader does, not counted.
  When the records counted that way are not the rows the reader saw, the file is left as it is.
- **Parquet**: record batches are filtered one at a time and written with the file's own schema, so its
  metadata (the pseudonymisation record of a working copy among it) is kept.

A file that changed between the search and the rewrite is left as it is, and the erasure says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.policy_models import CsvDialect

if TYPE_CHECKING:
    from charter_guardrails.dsr.places import Place
    from charter_guardrails.dsr.scan import Matcher


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.dsr-{os.getpid()}.tmp")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(tmp: Path, path: Path, before: os.stat_result) -> None:
    """fsync ``tmp``, check ``path`` did not change since it was searched, rename, fsync the folder."""
    _fsync(tmp)
    now = path.stat()
    if (now.st_size, now.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path.name} changed while it was being erased: it is left as it is; run the erasure again")
    os.replace(tmp, path)
    _fsync(path.parent)


def csv_records(path: Path, quotechar: str) -> list[tuple[int, int]]:
    """(start, end) byte offsets of each record of ``path``; blank lines are records of their own."""
    quote = quotechar.encode("ascii")
    spans: list[tuple[int, int]] = []
    start = offset = quotes = 0
    with path.open("rb") as handle:
        for line in handle:
            offset += len(line)
            quotes += line.count(quote)
            if quotes % 2 == 0:
                spans.append((start, offset))
                start, quotes = offset, 0
    if start < offset:
        spans.append((start, offset))  # an unbalanced last record: kept as it is
    return spans


def rewrite_csv(path: Path, dialect: CsvDialect | None, drop: set[int], rows_seen: int, before: os.stat_result) -> int:
    """Copy ``path`` without its data rows ``drop`` (0-based, as the reader counts them); return how many left."""
    dialect = dialect or CsvDialect()
    if (
        dialect.encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32"))
        or len(dialect.quotechar.encode()) != 1
    ):
        raise ConfigError(
            f"{path.name}: rows cannot be erased in place from a {dialect.encoding} file; convert it to UTF-8"
        )
    spans = csv_records(path, dialect.quotechar)
    tmp = _tmp(path)
    removed = data_row = 0
    header_seen = False
    with path.open("rb") as source, tmp.open("wb") as target:
        for start, end in spans:
            source.seek(start)
            record = source.read(end - start)
            if record.strip(b"\r\n"):
                if not header_seen:
                    header_seen = True
                else:
                    data_row += 1
                    if data_row - 1 in drop:
                        removed += 1
                        continue
            target.write(record)
    if data_row != rows_seen or removed != len(drop):
        tmp.unlink(missing_ok=True)
        raise ConfigError(
            f"{path.name}: its records ({data_row}) are not the rows the reader saw ({rows_seen}); "
            "the file is left as it is: check its quoting, then erase again"
        )
    _commit(tmp, path, before)
    return removed


def rewrite_parquet(path: Path, matcher: Matcher, before: os.stat_result) -> int:
    """Write ``path`` again without the rows ``matcher`` marks; return how many were left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from charter_guardrails.dsr.scan import BATCH_ROWS, batch_mask
    from charter_guardrails.readers.files import parquet_errors

    tmp = _tmp(path)
    removed = 0
    with parquet_errors(path):
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
                keep = batch_mask({n: batch.column(n).to_pylist() for n in text}, matcher) if text else []
                kept = batch.filter(pa.array(keep, type=pa.bool_())) if text else batch
                removed += batch.num_rows - kept.num_rows
                writer.write_batch(kept)
    _commit(tmp, path, before)
    return removed


def erase_rows(place: Place, matcher: Matcher, drop: set[int], rows_seen: int, before: os.stat_result) -> int:
    """Rewrite ``place`` without the person's rows; return the number of rows left out."""
    if place.is_parquet:
        return rewrite_parquet(place.path, matcher, before)
    return rewrite_csv(place.path, place.dialect, drop, rows_seen, before)
