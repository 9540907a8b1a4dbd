"""The profile of a data file from which a use case is drafted: per column its type, nulls, distinct values and range.

The file is read with the project's readers (CSV dialect detected the one way, Parquet with its bounds), so the
drafted policy declares the dialect and the types the guardrails will read the file with. A column's type is
guessed from its text, then checked by converting the column with :func:`charter_guardrails.readers.files.apply_types`,
the conversion the quality runner applies: a type that would not convert every value is never proposed.

The profile holds values (ranges, value sets); :mod:`.skeleton` and :mod:`.suite_draft` leave out those of columns
that hold personal data before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from charter_guardrails.core.errors import DatasetReadError
from charter_guardrails.core.policy_models import (
    Column,
    ColumnRole,
    ColumnType,
    CsvDialect,
    Dataset,
    DatasetFormat,
    DatasetRole,
)

if TYPE_CHECKING:
    import pandas as pd

    from charter_guardrails.readers.dialect import DetectedDialect

#: Rows read at a time from a CSV: progress is reported after each chunk.
CHUNK_ROWS = 100_000
#: A column is low-cardinality (its value set is drafted) with at most this many distinct values...
LOW_CARDINALITY_MAX = 20
#: ...and at most this share of its non-null rows.
LOW_CARDINALITY_SHARE = 0.05
#: Text columns whose values have at least this many words (median) are free text.
FREE_TEXT_MIN_WORDS = 4

_INTEGER = re.compile(r"^[+-]?\d+$")
_LEADING_ZERO = re.compile(r"^[+-]?0\d")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_BOOLEANS = {"true", "false", "oui", "non"}

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ColumnProfile:
    """One column as read: its guessed type and the statistics the drafts need."""

    name: str
    type: ColumnType
    rows: int
    nulls: int
    distinct: int
    #: Median number of words of the values (text columns), to tell free text from codes and labels.
    median_words: float = 0.0
    #: Smallest and largest value of a number (int or float) or a date (ISO 8601 text).
    minimum: float | int | str | None = None
    maximum: float | int | str | None = None
    #: The values of a low-cardinality text column, sorted (``None`` for other columns).
    values: tuple[str, ...] | None = None

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def unique(self) -> bool:
        """No null and no value twice."""
        return self.rows > 0 and self.nulls == 0 and self.distinct == self.rows


@dataclass(frozen=True)
class FileProfile:
    """A data file's format, dialect, row count and column profiles."""

    path: Path
    format: DatasetFormat
    #: The CSV dialect detected (``None`` for Parquet).
    dialect: DetectedDialect | None
    rows: int
    columns: list[ColumnProfile]

    @property
    def csv_dialect(self) -> CsvDialect:
        """The dialect as a policy declares it (UTF-8 with or without a BOM: the readers strip a BOM)."""
        if self.dialect is None:
            return CsvDialect()
        encoding = "utf-8" if self.dialect.encoding == "utf-8-sig" else self.dialect.encoding
        return CsvDialect(separator=self.dialect.separator, decimal=self.dialect.decimal, encoding=encoding)

    def column(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def read_file(path: Path, progress: Progress | None = None) -> tuple[pd.DataFrame, DetectedDialect | None]:
    """The file as read by the readers: a CSV as text in its detected dialect (in chunks, reporting the rows read),
    or a Parquet file. :raises DatasetReadError: the readers' error for a bad file, or a file without rows."""
    import pandas as pd

    from charter_guardrails.readers.files import detect_csv_dialect, iter_csv, read_parquet

    if path.suffix.lower() == ".parquet" or path.is_dir():
        frame = read_parquet(path)
        detected = None
    else:
        detected = detect_csv_dialect(path)
        dialect = CsvDialect(separator=detected.separator, decimal=detected.decimal, encoding=detected.encoding)
        chunks: list[pd.DataFrame] = []
        rows = 0
        for chunk in iter_csv(path, dialect, chunk_rows=CHUNK_ROWS):
            chunks.append(chunk)
            rows += len(chunk)
            if progress is not None:
                progress(rows)
        frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else (chunks[0] if chunks else pd.DataFrame())
    if frame.empty:
        raise DatasetReadError(
            "empty",
            f"{path}: no data rows to draft a use case from; give a file with a header and rows",
            path=str(path),
        )
    return frame, detected


def profile_frame(frame: pd.DataFrame, path: Path, dialect: DetectedDialect | None) -> FileProfile:
    """Profile every column of ``frame`` (as :func:`read_file` returned it)."""
    fmt = DatasetFormat.CSV if dialect is not None else DatasetFormat.PARQUET
    decimal = dialect.decimal if dialect is not None else "."
    names = [str(c) for c in frame.columns]
    guessed = {name: infer_type(frame[name], decimal) for name in names}
    typed, unparseable = _typed(frame, guessed, dialect)
    for name in unparseable:  # a guess the readers cannot apply to every value: read it as text
        guessed[name] = ColumnType.STRING
        typed[name] = frame[name].astype("string")
    columns = [_profile_column(name, guessed[name], typed[name]) for name in names]
    return FileProfile(path=path, format=fmt, dialect=dialect, rows=len(frame), columns=columns)


def infer_type(series: pd.Series, decimal: str = ".") -> ColumnType:
    """The type a column's values fit: boolean, integer, float, date, datetime, else category or string."""
    import pandas as pd

    present = series.dropna()
    if present.empty:
        return ColumnType.STRING
    if not (pd.api.types.is_object_dtype(present) or pd.api.types.is_string_dtype(present)):
        return _stored_type(present)
    text = present.astype(str).str.strip()
    if set(text.str.lower().unique()) <= _BOOLEANS:
        return ColumnType.BOOLEAN
    numbers = text.str.replace("\u202f", "").str.replace(" ", "").str.replace(",", ".") if decimal == "," else text
    if numbers.str.match(_INTEGER).all():
        # leading zeros are codes (postal codes, INSEE codes): an integer would lose them
        return ColumnType.CATEGORY if text.str.match(_LEADING_ZERO).any() else ColumnType.INTEGER
    if numbers.str.match(_FLOAT).all():
        return ColumnType.FLOAT
    if text.str.match(_DATE).all():
        return ColumnType.DATE
    if text.str.match(_DATETIME).all():
        return ColumnType.DATETIME
    distinct = text.nunique()
    return ColumnType.CATEGORY if _low_cardinality(distinct, len(text)) else ColumnType.STRING


def _stored_type(present: pd.Series) -> ColumnType:
    """The type of a column a Parquet file stores typed."""
    import datetime as dt

    import pandas as pd

    if pd.api.types.is_bool_dtype(present):
        return ColumnType.BOOLEAN
    if pd.api.types.is_integer_dtype(present):
        return ColumnType.INTEGER
    if pd.api.types.is_float_dtype(present):
        return ColumnType.FLOAT
    if pd.api.types.is_datetime64_any_dtype(present):
        return ColumnType.DATETIME
    if all(isinstance(v, dt.date) for v in present.head(1000)):
        return ColumnType.DATE
    return ColumnType.STRING


def _low_cardinality(distinct: int, non_null: int) -> bool:
    return 0 < distinct <= LOW_CARDINALITY_MAX and distinct <= LOW_CARDINALITY_SHARE * non_null


def _typed(
    frame: pd.DataFrame, types: dict[str, ColumnType], dialect: DetectedDialect | None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``frame`` converted by the readers' :func:`apply_types` with the guessed types, and the columns it could not
    convert fully (with their counts of values that did not parse)."""
    from charter_guardrails.readers.files import apply_types

    csv = CsvDialect(decimal=dialect.decimal) if dialect is not None else CsvDialect(decimal=".")
    columns = [Column(name=name, role=ColumnRole.FEATURE, type=t) for name, t in types.items() if len(name) <= 128]
    if not columns:
        return frame.copy(), {}
    dataset = Dataset(
        id="draft",
        role=DatasetRole.TRAINING,
        format=DatasetFormat.CSV,
        path="draft.csv",
        csv=csv,
        personal_data=False,
        columns=columns,
    )
    return apply_types(frame, dataset)


def _profile_column(name: str, type_: ColumnType, typed: pd.Series) -> ColumnProfile:
    """The statistics of one typed column."""
    rows = len(typed)
    nulls = int(typed.isna().sum())
    present = typed.dropna()
    distinct = int(present.nunique())
    profile = ColumnProfile(name=name, type=type_, rows=rows, nulls=nulls, distinct=distinct)
    if present.empty:
        return profile
    if type_ in (ColumnType.INTEGER, ColumnType.FLOAT):
        low, high = present.min(), present.max()
        cast = int if type_ is ColumnType.INTEGER else float
        return replace(profile, minimum=cast(low), maximum=cast(high))
    if type_ in (ColumnType.DATE, ColumnType.DATETIME):
        low, high = present.min(), present.max()
        if type_ is ColumnType.DATE:
            return replace(profile, minimum=low.date().isoformat(), maximum=high.date().isoformat())
        return replace(profile, minimum=low.isoformat(), maximum=high.isoformat())
    if type_ in (ColumnType.STRING, ColumnType.CATEGORY):
        words = float(present.astype(str).str.split().str.len().median())
        values = tuple(sorted(str(v) for v in present.unique())) if _low_cardinality(distinct, len(present)) else None
        return replace(profile, median_words=words, values=values)
    return profile
