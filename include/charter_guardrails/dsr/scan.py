"""Streaming search of one file for one person: the rows that hold them, and in which columns.

Files are read in bounded memory: Parquet in pyarrow record batches, CSV in chunks of
:func:`charter_guardrails.readers.files.iter_csv` in the dataset's declared dialect. Each distinct text
of a chunk is tested once:

- the clear value (:meth:`Identifier.matches_text`), in every file: a raw file holds it, and a copy holds
  it where the detector missed it;
- in a working copy, a cell equal to one of the keyed pseudonyms of the value's written forms
  (an identifier column), or holding one of their entity tokens (free text).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.privacy.pseudonymise import entity_token, pseudonym
from charter_guardrails.dsr.identifiers import ENTITY_TYPES, Identifier

if TYPE_CHECKING:
    from charter_guardrails.dsr.places import Place

#: Rows per Parquet batch and CSV chunk: one of them is in memory at a time.
BATCH_ROWS = 50_000
_TOKEN = re.compile(r"<[A-Z_]+_[0-9a-f]{10}>")


@dataclass(frozen=True)
class Matcher:
    """What marks the person's rows in one file."""

    identifier: Identifier
    pseudonyms: frozenset[str] = frozenset()
    tokens: frozenset[str] = frozenset()

    @classmethod
    def for_place(cls, identifier: Identifier, place: Place) -> Matcher:
        forms = identifier.written_forms()
        types = ENTITY_TYPES[identifier.type]
        return cls(
            identifier,
            frozenset(pseudonym(key, form) for key in place.keys for form in forms),
            frozenset(entity_token(key, t, form) for key in place.keys for t in types for form in forms),
        )

    def why(self, text: str) -> str | None:
        """How ``text`` holds the person (``value``, ``pseudonym`` or ``entity token``), or None."""
        if self.pseudonyms and text in self.pseudonyms:
            return "pseudonym"
        if self.tokens and "<" in text and any(t in self.tokens for t in _TOKEN.findall(text)):
            return "entity token"
        if self.identifier.matches_text(text):
            return "value"
        return None


@dataclass
class FileHits:
    """The person's rows in one file (0-based data rows, header excluded)."""

    rows_scanned: int = 0
    rows: set[int] = field(default_factory=set)
    columns: set[str] = field(default_factory=set)
    matched_by: set[str] = field(default_factory=set)


def _column_hits(values: Sequence[Any], matcher: Matcher) -> dict[int, str]:
    """Row offsets of ``values`` whose text holds the person, with how; each distinct text is tested once."""
    verdicts: dict[str, str | None] = {}
    hits: dict[int, str] = {}
    for offset, value in enumerate(values):
        if not isinstance(value, str) or not value:
            continue
        if value not in verdicts:
            verdicts[value] = matcher.why(value)
        why = verdicts[value]
        if why is not None:
            hits[offset] = why
    return hits


def batches(place: Place) -> Iterator[dict[str, Sequence[Any]]]:
    """The file's text columns, one batch at a time (column name → values)."""
    if place.is_parquet:
        yield from _parquet_batches(place)
        return
    from charter_guardrails.core.policy_models import CsvDialect
    from charter_guardrails.readers.files import iter_csv

    for chunk in iter_csv(place.path, place.dialect or CsvDialect(), chunk_rows=BATCH_ROWS):
        yield {str(c): chunk[c].tolist() for c in chunk.columns}


def _parquet_batches(place: Place) -> Iterator[dict[str, Sequence[Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from charter_guardrails.readers.files import check_parquet, parquet_errors

    check_parquet(place.path)
    with parquet_errors(place.path):
        parquet = pq.ParquetFile(place.path)
        text = [f.name for f in parquet.schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        if not text:
            return  # no text column: nothing can hold a person's identifier
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=text):
            yield {name: batch.column(name).to_pylist() for name in text}


def scan(place: Place, matcher: Matcher) -> FileHits:
    """Every row of ``place`` that holds the person."""
    hits = FileHits()
    for columns in batches(place):
        size = len(next(iter(columns.values()), []))
        for name, values in columns.items():
            for offset, why in _column_hits(values, matcher).items():
                hits.rows.add(hits.rows_scanned + offset)
                hits.columns.add(name)
                hits.matched_by.add(why)
        hits.rows_scanned += size
    return hits


def batch_mask(columns: dict[str, Sequence[Any]], matcher: Matcher) -> list[bool]:
    """``True`` for the rows of one batch to keep (they do not hold the person)."""
    size = len(next(iter(columns.values()), []))
    keep = [True] * size
    for values in columns.values():
        for offset in _column_hits(values, matcher):
            keep[offset] = False
    return keep
