"""Readers for the datasets a policy declares: CSV in French dialects, Parquet, SQL tables.

French public data is often ``;``-separated with decimal commas, in Latin-1/cp1252, sometimes
with a UTF-8 BOM. :func:`detect_csv_dialect` (:mod:`.dialect`) says what it assumed; :func:`read_dataset` reads
with the dialect the policy declares. Unreadable input raises :class:`DatasetReadError`, whose
``kind`` classifies the problem; checks turn it into a failing verdict (bad data is a verdict).

pandas is imported inside functions: DAG files import this module's callers at parse time.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from charter_guardrails.core.errors import DatasetReadError
from charter_guardrails.core.policy_models import ColumnType, CsvDialect, Dataset, DatasetFormat
from charter_guardrails.core.settings import get_settings
from charter_guardrails.readers.dialect import DetectedDialect, sniff_csv_dialect
from charter_guardrails.readers.nul_bytes import has_nul

if TYPE_CHECKING:
    import pandas as pd

#: Longest cell a dataset may hold (characters), the longest text the NER pipeline accepts (``nlp.max_length``).
#: A citizen request is a few hundred characters; a cell of megabytes is a pasted document or an attack on the
#: analysers (NER memory grows with the text), so it is refused (``too_large``) before any analyser sees it.
MAX_CELL_CHARS = 2_000_000
#: Widest CSV the readers accept: the scanner and the quality runner are sized for 10,000 columns, and a
#: policy declares a few dozen. The header is counted before pandas parses anything.
MAX_COLUMNS = 10_000
#: Longest header line read to count the columns.
MAX_HEADER_BYTES = 4 << 20
#: A Parquet file announcing more rows than this per byte of file (and more than PARQUET_BOMB_MIN_ROWS) is refused:
#: real tables of several columns take a byte or more per row, even compressed.
PARQUET_MAX_ROWS_PER_BYTE = 10
PARQUET_BOMB_MIN_ROWS = 1_000_000
#: Magic numbers of the archive formats pandas would expand on its own: the readers never expand an
#: archive (a zip bomb of a few MiB holds GiB of rows), they refuse it.
ARCHIVE_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"PK\x05\x06": "zip",
    b"PK\x07\x08": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7z",
}


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DatasetReadError(
            "missing",
            f"{path}: file not found; check the dataset path in the policy and the data folder",
            path=str(path),
        )
    if path.is_dir():
        return
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise DatasetReadError(
            "missing", f"{path}: cannot be read ({exc.strerror}); check its permissions", path=str(path)
        ) from exc
    if size == 0:
        raise DatasetReadError(
            "empty", f"{path}: the file is empty (0 bytes); regenerate or re-export it", path=str(path)
        )
    archive = next((name for magic, name in ARCHIVE_MAGIC.items() if head.startswith(magic)), None)
    if archive is not None:
        raise DatasetReadError(
            "binary",
            f"{path}: is a {archive} archive, which the readers never expand (an archive can "
            "hide gigabytes of rows); decompress it under a size limit and declare the CSV or Parquet file",
            path=str(path),
        )
    if (
        path.suffix.lower() != ".parquet"
        and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        and has_nul(path, head, size)
    ):
        raise DatasetReadError(
            "binary", f"{path}: contains NUL bytes, so it is not a text CSV; check the export", path=str(path)
        )


def detect_csv_dialect(path: Path) -> DetectedDialect:
    """Guess separator, decimal mark and encoding from the first MiB (:func:`.dialect.sniff_csv_dialect`)."""
    _check_file(path)
    return sniff_csv_dialect(path)


def check_csv(path: Path, dialect: CsvDialect) -> str:
    """The bounds checked before a CSV is parsed (present, not empty, not binary or an archive, not too wide);
    returns the encoding to read it with (UTF-8 as ``utf-8-sig``: a BOM must not end up in a column name)."""
    _check_file(path)
    encoding = dialect.encoding
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    _check_width(path, dialect, encoding)
    return encoding


def read_csv(
    path: Path, dialect: CsvDialect, *, usecols: list[str] | None = None, nrows: int | None = None
) -> pd.DataFrame:
    """Read a CSV as strings (types are applied by :func:`apply_types`), with clear errors."""
    return next(iter_csv(path, dialect, usecols=usecols, nrows=nrows, chunk_rows=None))


def iter_csv(
    path: Path,
    dialect: CsvDialect,
    *,
    chunk_rows: int | None = 50_000,
    usecols: list[str] | None = None,
    nrows: int | None = None,
) -> Iterator[pd.DataFrame]:
    """The CSV as strings in frames of ``chunk_rows`` rows (one frame when ``None``), with clear errors and the
    readers' bounds: a chunked read holds one chunk in memory, whatever the size of the file."""
    import pandas as pd

    encoding = check_csv(path, dialect)
    with (
        _csv_errors(path, dialect),
        pd.read_csv(
            path,
            sep=dialect.separator,
            quotechar=dialect.quotechar,
            encoding=encoding,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            usecols=usecols,
            nrows=nrows,
            engine="c",
            on_bad_lines="error",
            compression=None,  # never expand an archive because of its file name (see ARCHIVE_MAGIC)
            chunksize=chunk_rows,
            iterator=True,
        ) as chunks,
    ):
        for chunk in chunks:
            _check_shape(path, chunk, dialect)
            yield chunk


@contextmanager
def _csv_errors(path: Path, dialect: CsvDialect) -> Iterator[None]:
    """pandas' parsing errors as :class:`DatasetReadError` that say what is wrong and what to do."""
    import pandas as pd

    try:
        yield
    except UnicodeDecodeError as exc:
        raise DatasetReadError(
            "encoding",
            f"{path}: not valid {dialect.encoding} at byte {exc.start}; declare the file's encoding "
            "(e.g. csv.encoding: latin-1) in the policy",
            path=str(path),
        ) from None
    except pd.errors.EmptyDataError:
        raise DatasetReadError(
            "empty", f"{path}: no columns to read (empty file or header missing)", path=str(path)
        ) from None
    except pd.errors.ParserError as exc:
        # pandas' message gives line numbers and counts, not cell values
        raise DatasetReadError(
            "parse",
            f"{path}: malformed CSV ({str(exc).strip()}); check the separator {dialect.separator!r} and the quoting",
            path=str(path),
        ) from None
    except ValueError as exc:
        if "Usecols" in str(exc) or "usecols" in str(exc):
            raise DatasetReadError("schema", f"{path}: declared columns are missing: {exc}", path=str(path)) from None
        raise DatasetReadError("parse", f"{path}: cannot be parsed as CSV ({exc})", path=str(path)) from None


def _check_width(path: Path, dialect: CsvDialect, encoding: str) -> None:
    """Refuse a header of more than :data:`MAX_COLUMNS` columns before parsing: pandas alone takes seconds and
    hundreds of MiB on 100,000 columns, and every check after it more."""
    if path.is_dir():
        return
    with path.open("rb") as handle:
        header = handle.readline(MAX_HEADER_BYTES + 1)
    if len(header) > MAX_HEADER_BYTES:
        raise DatasetReadError(
            "too_large",
            f"{path}: the first line is longer than {MAX_HEADER_BYTES >> 20} MiB, so it is not a "
            "CSV header; check the export",
            path=str(path),
        )
    text = header.decode(encoding, errors="replace").rstrip("\r\n")
    try:
        width = len(next(csv.reader([text], delimiter=dialect.separator, quotechar=dialect.quotechar), []))
    except csv.Error:  # a stray carriage return or quote: count the separators instead
        width = text.count(dialect.separator) + 1
    if width > MAX_COLUMNS:
        raise DatasetReadError(
            "too_large",
            f"{path}: the header has {width:,} columns, above the {MAX_COLUMNS:,} the guardrails "
            "accept; deliver the declared columns only",
            path=str(path),
        )


def _check_shape(path: Path, frame: pd.DataFrame, dialect: CsvDialect) -> None:
    """A wrong separator reads as one column whose name holds the real separator; a huge cell is refused."""
    if len(frame.columns) == 1:
        name = str(frame.columns[0])
        other = next((sep for sep in (";", ",", "\t", "|") if sep != dialect.separator and sep in name), None)
        if other is not None:
            raise DatasetReadError(
                "parse",
                f"{path}: one column only, and its header holds {other!r}: the file looks "
                f"{other!r}-separated, not {dialect.separator!r}; fix csv.separator in the policy or the export",
                path=str(path),
            )
    if path.stat().st_size <= MAX_CELL_CHARS or frame.empty:
        return  # no cell can be longer than the file
    if len(frame.columns) <= 1000:
        longest = {str(c): frame[c].str.len().max() for c in frame.columns}
    else:  # a wide frame: one pass over the values costs less than a Series per column
        lengths = [len(v) if isinstance(v, str) else 0 for v in frame.to_numpy(dtype=object).ravel()]
        at = max(range(len(lengths)), key=lengths.__getitem__)
        longest = {str(frame.columns[at % len(frame.columns)]): lengths[at]}
    column, size = max(
        ((c, n) for c, n in longest.items() if n == n), key=lambda item: item[1], default=("", 0)
    )  # NaN: empty column
    if size > MAX_CELL_CHARS:
        raise DatasetReadError(
            "too_large",
            f"{path}: a cell of column {column[:60]!r} holds {int(size):,} characters, above the "
            f"{MAX_CELL_CHARS:,} the guardrails analyse; remove or split it at the source",
            path=str(path),
        )


def read_parquet(path: Path, *, columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd

    check_parquet(path)
    with parquet_errors(path):
        return pd.read_parquet(path, columns=columns)


def check_parquet(path: Path) -> None:
    """The bounds checked before any Parquet file is read: present, not empty, not a decompression bomb."""
    _check_file(path)
    with parquet_errors(path):
        _check_parquet_expansion(path)


@contextmanager
def parquet_errors(path: Path) -> Iterator[None]:
    """Any error of pyarrow on a broken file as a :class:`DatasetReadError` (its message names no value)."""
    try:
        yield
    except DatasetReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a broken file
        raise DatasetReadError(
            "parse", f"{path}: not a readable Parquet file ({type(exc).__name__}); re-export it", path=str(path)
        ) from None


def _check_parquet_expansion(path: Path) -> None:
    """Refuse a Parquet "bomb" from its footer, before reading: run-length and dictionary encoding let a file of
    a few hundred KiB announce tens of millions of rows, which pandas would build in memory."""
    import pyarrow.parquet as pq

    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in {".parquet", ".pq"}) if path.is_dir() else [path]
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    size = sum(f.stat().st_size for f in files)
    if rows > PARQUET_BOMB_MIN_ROWS and rows > PARQUET_MAX_ROWS_PER_BYTE * size:
        raise DatasetReadError(
            "too_large",
            f"{path}: {size:,} bytes of Parquet announce {rows:,} rows, more than "
            f"{PARQUET_MAX_ROWS_PER_BYTE} per byte (a decompression bomb, or a constant column); refused "
            "before reading",
            path=str(path),
        )


def read_sql_table(table: str, url: str | None = None, *, columns: list[str] | None = None) -> pd.DataFrame:
    """The table whole, or a SELECT of ``columns`` (those the table has: a column it lacks is left out, as a file
    lacking a declared column is read without it)."""
    import pandas as pd
    from sqlalchemy import create_engine, inspect

    from charter_guardrails.ledger.db import redact_url

    url = url or get_settings().data_url
    engine = create_engine(url)
    try:
        schema, _, name = table.rpartition(".")
        inspector = inspect(engine)
        if not inspector.has_table(name, schema=schema or None):
            raise DatasetReadError("missing", f"table {table} does not exist in {redact_url(url)}")
        if columns is not None:
            present = {str(c["name"]) for c in inspector.get_columns(name, schema=schema or None)}
            columns = [c for c in columns if c in present]
        return pd.read_sql_table(name, engine, schema=schema or None, columns=columns)
    finally:
        engine.dispose()


def read_dataset(
    dataset: Dataset,
    path: Path | None = None,
    *,
    data_dir: Path | None = None,
    sql_url: str | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Read a declared dataset (or another file in its format, e.g. a variant) as declared by the policy.

    :param columns: for a table, the columns to SELECT (default: all); files are read whole.
    """
    if dataset.format is DatasetFormat.SQL and path is None:
        assert dataset.table is not None  # noqa: S101 - the policy model requires a table for an SQL dataset
        return read_sql_table(dataset.table, sql_url, columns=columns)
    target = path or dataset.resolve_path(data_dir)
    if dataset.format is DatasetFormat.PARQUET or target.suffix.lower() == ".parquet" or target.is_dir():
        return read_parquet(target)
    return read_csv(target, dataset.csv)


def read_any(path: Path) -> tuple[pd.DataFrame, DetectedDialect | None]:
    """Read a file without a policy: Parquet by suffix, else CSV with a detected dialect."""
    if path.suffix.lower() == ".parquet" or path.is_dir():
        return read_parquet(path), None
    dialect = detect_csv_dialect(path)
    return read_csv(path, dialect.as_policy_dialect()), dialect


def apply_types(frame: pd.DataFrame, dataset: Dataset) -> tuple[pd.DataFrame, dict[str, int]]:
    """Convert declared columns to their declared types; return the frame and, per column, the
    number of non-empty values that did not parse (a quality problem, not an exception)."""
    import pandas as pd

    out = frame.copy()
    unparseable: dict[str, int] = {}
    for column in dataset.columns:
        if column.name not in out.columns:
            continue
        raw = out[column.name]
        if raw.dtype != object and not pd.api.types.is_string_dtype(raw):
            continue  # Parquet/SQL already typed
        present = raw.notna()
        if column.type in (ColumnType.INTEGER, ColumnType.FLOAT):
            text = raw.astype("string").str.strip()
            if dataset.csv.decimal == ",":
                text = (
                    text.str.replace("\u202f", "", regex=False)
                    .str.replace(" ", "", regex=False)
                    .str.replace(",", ".", regex=False)
                )
            converted = pd.to_numeric(text, errors="coerce")
            converted = (
                converted.astype("Float64") if column.type is ColumnType.FLOAT else converted.round().astype("Int64")
            )
        elif column.type in (ColumnType.DATE, ColumnType.DATETIME):
            converted = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
        elif column.type is ColumnType.BOOLEAN:
            converted = (
                raw.astype("string")
                .str.lower()
                .map({"true": True, "false": False, "1": True, "0": False, "oui": True, "non": False})
                .astype("boolean")
            )
        else:
            converted = raw.astype("string")
        bad = int((present & converted.isna()).sum())
        if bad:
            unparseable[column.name] = bad
        out[column.name] = converted
    return out, unparseable
