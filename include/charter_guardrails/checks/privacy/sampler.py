"""A uniform sample of rows and the distinct values of each column, over a stream of Arrow record batches.

Both hold what the scan needs and nothing more, whatever the length of the stream: the sample holds
``n`` rows; the counts hold each column's distinct values once with their row counts, so their memory
grows with the distinct values, not with the rows.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

T = TypeVar("T")

#: Values converted to Python at a time when a column's distinct values are read in order.
PYTHON_SLICE = 65_536


@functools.cache
def _blank() -> str:
    """An RE2 pattern of the values that ``str.strip`` empties (``str.isspace``): blank, as in
    :func:`.scanner.distinct_values`. Arrow's own notion of white space differs on a few control characters."""
    spaces = (f"\\x{{{ord(c):x}}}" for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    return "^[" + "".join(spaces) + "]*$"


#: Pending per-batch counts of a column are merged into its running counts from this many entries on (or
#: when they outgrow the running counts): merging costs a hash aggregation over both, so it runs rarely.
MERGE_FROM = 1 << 20


def as_text(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as UTF-8 text, nulls kept: what the recognizers read.

    Strings pass as they are; numbers, dates and booleans are cast by Arrow; bytes that are not UTF-8 and nested
    values (lists, structs), which Arrow cannot cast, are written by Python, bytes decoded with replacement as
    :func:`.scanner.distinct_values` does.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_string(array.type):
        return array
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.array(
            [
                None if v is None else v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                for v in array.to_pylist()
            ],
            pa.string(),
        )


class ArrowValues(Sequence[T]):
    """A read-only sequence over an Arrow array, converted to Python objects a slice at a time: a column of a
    million distinct messages is never a million Python strings at once."""

    def __init__(self, array: pa.Array) -> None:
        self._array = array

    def __len__(self) -> int:
        return len(self._array)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self._array))
            if step != 1:
                return list(self)[index]
            return self._array.slice(start, max(stop - start, 0)).to_pylist()  # type: ignore[no-any-return]
        if not -len(self._array) <= index < len(self._array):
            raise IndexError(index)
        return self._array[index].as_py()  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[T]:
        for start in range(0, len(self._array), PYTHON_SLICE):
            yield from self._array.slice(start, PYTHON_SLICE).to_pylist()


class Reservoir:
    """A uniform random sample of ``size`` rows of a stream whose length is not known in advance.

    Bottom-k sampling: each row gets a key drawn from U(0, 1) by a generator seeded with ``seed``, and the sample
    is the ``size`` rows with the smallest keys. The keys are independent and identically distributed, so every
    set of ``size`` rows is equally likely to be the sample: a simple random sample without replacement of all
    the rows, whatever their order in the file, which is what the sampling guarantee assumes. Keys are drawn in
    row order, so the sample does not depend on how the stream is cut into batches.

    Per batch (vectorised with numpy), only the rows whose key is below the largest kept key are taken: once the
    sample is full, about ``size * batch / rows seen`` rows per batch, soon a handful. They wait beside the sample
    and join it ``size`` rows at a time (their keys decide which stay), so a batch costs a draw and a comparison.
    """

    def __init__(self, size: int, seed: int) -> None:
        import numpy as np

        self.size = size
        self.rows_seen = 0
        self._rng = np.random.default_rng(seed)
        self._keys: np.ndarray = np.empty(0)
        self._table: pa.Table | None = None
        #: The largest kept key once the sample is full: a row with a larger key cannot enter it.
        self._threshold = 1.0
        self._waiting: list[pa.RecordBatch] = []
        self._waiting_keys: list[np.ndarray] = []
        self._waiting_rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        import numpy as np
        import pyarrow as pa

        keys = self._rng.random(batch.num_rows)
        self.rows_seen += batch.num_rows
        if self._table is None:
            self._table = pa.Table.from_batches([batch.slice(0, 0)])
        picked = np.flatnonzero(keys < self._threshold)
        if not len(picked):
            return
        self._waiting.append(batch if len(picked) == batch.num_rows else batch.take(pa.array(picked)))
        self._waiting_keys.append(keys[picked])
        self._waiting_rows += len(picked)
        if self._waiting_rows >= self.size:
            self._merge()

    def _merge(self) -> None:
        """The sample and the rows waiting: the ``size`` with the smallest keys stay, in the order of the stream."""
        import numpy as np
        import pyarrow as pa

        if not self._waiting or self._table is None:
            return
        table = pa.concat_tables([self._table, pa.Table.from_batches(self._waiting)])
        kept = np.concatenate([self._keys, *self._waiting_keys])
        if len(kept) > self.size:
            keep = np.sort(np.argpartition(kept, self.size - 1)[: self.size])  # sorted: the rows stay in file order
            table, kept = table.take(pa.array(keep)), kept[keep]
        if len(kept) >= self.size:
            self._threshold = float(kept.max())
        self._table, self._keys = table.combine_chunks(), kept
        self._waiting, self._waiting_keys, self._waiting_rows = [], [], 0

    @property
    def table(self) -> pa.Table | None:
        """The sample, in the order of the stream; ``None`` before the first batch."""
        self._merge()
        return self._table


class RowWindow:
    """The rows ``[start, stop)`` of a stream of batches (counted from its first row), passed on to ``sink``: one
    partition of a file read as a stream. Empty batches pass too (the first one gives the columns)."""

    def __init__(self, sink: Reservoir | DistinctCounts, start: int, stop: int) -> None:
        self.sink = sink
        self.start, self.stop = start, stop
        self.position = 0

    @property
    def done(self) -> bool:
        """Every row of the window was seen: the reader may stop."""
        return self.position >= self.stop

    def add(self, batch: pa.RecordBatch) -> None:
        first, self.position = self.position, self.position + batch.num_rows
        low, high = max(first, self.start), min(self.position, self.stop)
        if not batch.num_rows:
            self.sink.add(batch)
        elif low < high:
            self.sink.add(batch if high - low == batch.num_rows else batch.slice(low - first, high - low))


class DistinctCounts:
    """Each column's distinct values with their row counts, over a stream of batches of the same columns.

    Per batch and column, Arrow counts the values (``value_counts``, in C++); the counts of successive batches
    are merged by a hash aggregation on the value. Values are kept in the order they first appear in the stream.
    """

    def __init__(self) -> None:
        self.rows = 0
        self.names: list[str] = []
        self._merged: list[pa.Table | None] = []
        self._pending: list[list[pa.Table]] = []
        self._pending_rows: list[int] = []

    def add_table(self, table: pa.Table) -> None:
        self._start(table.schema.names)
        for batch in table.to_batches():
            self.add(batch)

    def _start(self, names: list[str]) -> None:
        if not self.names:
            self.names = list(names)
            self._merged = [None] * len(self.names)
            self._pending = [[] for _ in self.names]
            self._pending_rows = [0] * len(self.names)

    def start(self, names: Sequence[str], rows: int = 0) -> None:
        """The columns (and the rows) of counts added column by column (:meth:`add_counted`), or of no row at all."""
        self._start(list(names))
        self.rows = rows

    def add_counted(self, name: str, values: pa.Array, counts: pa.Array) -> None:
        """Distinct non-null ``values`` of column ``name`` and their row counts, counted elsewhere (a database's
        ``GROUP BY``): merged as a batch's counts are."""
        import pyarrow as pa

        i = self.names.index(name)
        part = pa.table({"values": values, "counts": counts})
        self._pending[i].append(part)
        self._pending_rows[i] += part.num_rows
        merged = self._merged[i]
        if self._pending_rows[i] >= max(MERGE_FROM, merged.num_rows if merged is not None else 0):
            self._merge(i)

    def add(self, batch: pa.RecordBatch) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self._start(batch.schema.names)
        self.rows += batch.num_rows
        if not batch.num_rows:
            return
        for i, column in enumerate(batch.columns):
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            if pa.types.is_nested(column.type):
                column = as_text(column)
            counted = pc.value_counts(column)
            # a batch's counts fit in 32 bits; merged sums are 64-bit
            values, counts = counted.field("values"), counted.field("counts").cast(pa.int32())
            if values.null_count:  # null is not a value; filtering copies, so only when there is one
                present = pc.is_valid(values)
                values, counts = pc.filter(values, present), pc.filter(counts, present)
            part = pa.table({"values": values, "counts": counts})
            self._pending[i].append(part)
            self._pending_rows[i] += part.num_rows
            merged = self._merged[i]
            if self._pending_rows[i] >= max(MERGE_FROM, merged.num_rows if merged is not None else 0):
                self._merge(i)

    def _merge(self, i: int) -> None:
        import pyarrow as pa

        merged = self._merged[i]
        parts = ([merged] if merged is not None else []) + self._pending[i]
        if not parts:
            return
        table = pa.concat_tables(parts, promote_options="permissive")  # 32-bit batch counts, 64-bit sums
        grouped = table.group_by("values", use_threads=False).aggregate([("counts", "sum")])
        self._merged[i] = grouped.select(["values", "counts_sum"]).rename_columns(["values", "counts"])
        self._pending[i], self._pending_rows[i] = [], 0
        del table, grouped
        pa.default_memory_pool().release_unused()  # its allocator would keep the pages of what was merged

    def column(self, i: int) -> tuple[Sequence[str], Sequence[int], int]:
        """(distinct non-empty values as text, their row counts, non-empty rows), most frequent first and, among
        values as frequent, in order of first appearance: the order of :func:`.scanner.distinct_values`. The
        column's counts are handed over: read once, they leave this object."""
        import pyarrow as pa
        import pyarrow.compute as pc

        self._merge(i)
        merged, self._merged[i] = self._merged[i], None
        if merged is None or not merged.num_rows:
            return [], [], 0
        values = as_text(merged.column("values"))
        blank = pc.match_substring_regex(values, _blank())
        if pc.any(blank).as_py():
            kept = pc.invert(blank)
            merged = pa.table({"values": pc.filter(values, kept), "counts": merged.column("counts").filter(kept)})
        else:
            merged = pa.table({"values": values, "counts": merged.column("counts")})
        del values, blank
        extremes = pc.min_max(merged.column("counts"))
        if extremes["min"].as_py() != extremes["max"].as_py():  # all as frequent (all unique): already in order
            merged = merged.take(pc.sort_indices(merged, sort_keys=[("counts", "descending")]))  # a stable sort
        ranked = merged.combine_chunks()
        del merged
        pa.default_memory_pool().release_unused()
        counts: Any = ranked.column("counts").chunk(0) if ranked.num_rows else pa.array([], pa.int64())
        total = pc.sum(counts).as_py() or 0
        texts: Any = ranked.column("values").chunk(0) if ranked.num_rows else pa.array([], pa.string())
        return ArrowValues[str](texts), ArrowValues[int](counts), total
