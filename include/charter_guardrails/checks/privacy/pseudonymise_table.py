"""The pseudonymised working copy of a ``format: sql`` training table, written from the rows its pin verified.

The table is read **once**, in key order, from a server-side cursor: every row is hashed over all its columns
into the key ranges of the signed manifest, exactly as the integrity step hashed it
(:func:`~charter_guardrails.checks.integrity.table_verification.verify_pinned_table`, whose pinned root covers every
column), and in the same pass only the declared columns (those :func:`.pseudonymise.pseudonymise_frame` keeps) go
on, ``chunk_rows`` rows at a time: typed as declared, pseudonymised with the use case's key, appended to a Parquet
file beside the target. The values of the other columns are hashed and dropped at once; they never reach a frame.

The copy takes the target's name only when the rows hash to the pinned root again. Otherwise it is deleted and the
verification (``data_changed``, with the changed key ranges) is returned for the integrity verdict and incident of a
mismatch. So the rows trained on are the rows verified, with no window between a check and a read.

Memory holds one chunk and the cursor's fetch buffer, whatever the size of the table. Free text is masked chunk by
chunk: a name detected in one message is propagated to the other messages of its chunk
(:func:`.pseudonymise.propagate_names`), not across chunks. Identifiers get the pseudonyms a file would give them
(the keyed hash of the value's text).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.privacy.pseudonymise import (
    COPY_METADATA_KEY,
    PseudonymisationReport,
    copy_metadata,
    pseudonymise_frame,
)
from charter_guardrails.core.errors import DatasetReadError
from charter_guardrails.core.policy_models import ColumnRole, ColumnType

if TYPE_CHECKING:
    import pyarrow as pa

    from charter_guardrails.checks.integrity.outcome import Verification
    from charter_guardrails.checks.integrity.table_verification import PinnedTable
    from charter_guardrails.core.policy_models import Dataset

#: Rows pseudonymised and written at a time (one Parquet row group each).
CHUNK_ROWS = 20_000


def _arrow_type(dataset: Dataset, name: str) -> pa.DataType:
    """The copy's type of a declared column: text once pseudonymised, else its declared type (dates in UTC)."""
    import pyarrow as pa

    column = dataset.column(name)
    if column.pseudonymise or column.role is ColumnRole.IDENTIFIER:
        return pa.string()
    return {
        ColumnType.INTEGER: pa.int64(),
        ColumnType.FLOAT: pa.float64(),
        ColumnType.BOOLEAN: pa.bool_(),
        ColumnType.DATE: pa.timestamp("us", tz="UTC"),
        ColumnType.DATETIME: pa.timestamp("us", tz="UTC"),
    }.get(column.type, pa.string())


class _CopySink:
    """Takes the rows of the hashing pass (:class:`~charter_guardrails.checks.integrity.table_hashing.RowSink`) and
    writes the pseudonymised projection of each chunk to ``tmp``."""

    def __init__(self, dataset: Dataset, key: bytes, tmp: Path, metadata: dict[str, str], chunk_rows: int) -> None:
        self.dataset, self.key, self.tmp, self.chunk_rows = dataset, key, tmp, chunk_rows
        self.metadata = {COPY_METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()}
        self.keep: list[str] = []
        self.positions: list[int] = []
        self.buffer: list[tuple[Any, ...]] = []
        self.writer: Any = None
        self.schema: Any = None
        self.report = PseudonymisationReport(0, [], [], [], [], [])

    def columns(self, names: list[str]) -> None:
        import pyarrow as pa

        declared = [c.name for c in self.dataset.columns]
        self.keep = [n for n in declared if n in names]
        self.positions = [names.index(n) for n in self.keep]
        self.report.kept_columns = list(self.keep)
        self.report.dropped_columns = [n for n in names if n not in declared]
        self.report.missing_columns = [n for n in declared if n not in names]
        fields = [pa.field(n, _arrow_type(self.dataset, n)) for n in self.keep]
        self.schema = pa.schema(fields, metadata=self.metadata)

    def row(self, values: tuple[Any, ...]) -> None:
        self.buffer.append(tuple(values[i] for i in self.positions))
        if len(self.buffer) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        import pandas as pd
        import pyarrow.parquet as pq

        from charter_guardrails.readers.files import apply_types

        # object columns: apply_types reads each value's text as a file's, so an identifier hashes as in a file
        frame, _ = apply_types(pd.DataFrame(self.buffer, columns=self.keep, dtype=object), self.dataset)
        self.buffer = []
        out, part = pseudonymise_frame(frame, self.dataset, self.key)
        self.report.rows += part.rows
        self.report.hashed_columns = part.hashed_columns
        self.report.masked_columns = part.masked_columns
        for entity, count in part.masked_entities.items():
            self.report.masked_entities[entity] = self.report.masked_entities.get(entity, 0) + count
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, self.schema)
        self.writer.write_table(self._typed(out))

    def _typed(self, frame: Any) -> pa.Table:
        """The chunk in the copy's schema; a value that does not convert is named by its column only."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        columns = []
        for field in self.schema:
            try:
                columns.append(table.column(field.name).cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                raise DatasetReadError(
                    "schema",
                    f"column {field.name} of the table does not convert to its declared type "
                    f"{self.dataset.column(field.name).type.value}; fix the column or its declared type",
                ) from None
        return pa.Table.from_arrays(columns, schema=self.schema)

    def close(self) -> None:
        """Write what is left (an empty table still gets its schema), then close the file."""
        import pyarrow.parquet as pq

        if self.schema is None:
            return  # no row was read: the key columns are gone, and the verification says so
        if self.buffer:
            self.flush()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, self.schema)
            self.writer.write_table(self.schema.empty_table())
        self.writer.close()


def pseudonymise_table(
    dataset: Dataset,
    target: Path,
    *,
    use_case: str,
    key: bytes,
    derivation: str,
    pin: PinnedTable | None = None,
    document: dict[str, Any] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    url: str | None = None,
) -> tuple[Verification | None, PseudonymisationReport | None]:
    """Write the pseudonymised Parquet copy of the table of ``dataset`` to ``target``, from the pinned rows only.

    :param pin: the rows the run verified, and ``document`` the signed manifest it was taken from: the copy is kept
        only if the rows of this one pass hash to the pin's root. Without a pin (a call outside a run) the table is
        copied as it is read.
    :return: the verification of the pass (None without a pin), and the report of the copy (None when the rows no
        longer match the pin: nothing is written).
    """
    from charter_guardrails.checks.integrity.pin import discard
    from charter_guardrails.checks.integrity.table_hashing import hash_table
    from charter_guardrails.checks.integrity.table_verification import data_engine, verify_pinned_table

    if dataset.table is None:
        raise ValueError(f"dataset {dataset.id!r} has no table")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    sink = _CopySink(dataset, key, tmp, copy_metadata(use_case, dataset.id, derivation), chunk_rows)
    try:
        verification: Verification | None = None
        if pin is not None and document is not None:
            verification = verify_pinned_table(pin, document, url=url, sink=sink)
        else:
            with data_engine(url) as engine:
                hash_table(engine, dataset.table, order_by=dataset.order_by, starts=[None], sink=sink)
        if verification is not None and not verification.intact:
            discard(target)  # nor is an older attempt's copy left for the steps after
            return verification, None  # the rows left in the buffer are not pseudonymised; the copy is discarded
        sink.close()
        tmp.replace(target)
    finally:
        if sink.writer is not None:
            sink.writer.close()
        discard(tmp)
    sink.report.key_derivation = derivation
    return verification, sink.report
