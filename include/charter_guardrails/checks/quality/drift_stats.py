"""A batch's drift statistics, from a DataFrame or from a SQL table in its database, by the same arithmetic.

The statistics of :mod:`.drift` need, per feature, only what can be counted:

- numeric: the distinct values in ascending order with their counts. The Kolmogorov–Smirnov statistic and the
  PSI bins are accumulated over them in one pass (:class:`NumericAccumulator`), in chunks, so that a table's
  values stream from a server-side cursor (``GROUP BY v ORDER BY v``) and a frame's come from ``np.unique``;
  both give the same floats, since every count is an integer and every share the same division;
- categorical: each value's count (``GROUP BY``), NULL counted as missing;
- free text: the texts, streamed one by one (words and their hashes cannot be counted in SQL).

A table is never loaded whole: the memory is a chunk of values, or one column's categories.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from charter_guardrails.checks.quality.reference_profile import MISSING

if TYPE_CHECKING:
    import pandas as pd

#: Distinct values (or texts) fetched from the server-side cursor at a time.
FETCH_ROWS = 20_000


class NumericAccumulator:
    """The KS statistic against the reference's quantile grid and the PSI bin counts, over sorted (value, count)
    chunks. The statistic is the largest gap between the batch's CDF (right-continuous) and the reference's
    (linear between the grid's quantiles) at every batch value and every grid point, as in :func:`.drift._numeric`.
    """

    def __init__(self, feature: dict[str, Any], total: int) -> None:
        import numpy as np

        self.grid = np.asarray(feature["quantiles"], dtype="float64")
        self.probs = np.linspace(0, 1, self.grid.size)
        self.edges = np.asarray(feature["edges"], dtype="float64")
        self.total = total
        self.seen = 0
        self.statistic = 0.0
        self.at_grid = np.zeros(self.grid.size, dtype="int64")  # values ≤ each grid point
        self.bins = np.zeros(self.edges.size + 1, dtype="float64")

    def add(self, values: Any, counts: Any) -> None:
        import numpy as np

        values, counts = np.asarray(values, dtype="float64"), np.asarray(counts, dtype="int64")
        if not values.size:
            return
        cumulative = self.seen + np.cumsum(counts)
        gaps = np.abs(cumulative / self.total - np.interp(values, self.grid, self.probs, left=0.0, right=1.0))
        self.statistic = max(self.statistic, float(gaps.max()))
        self.at_grid += np.concatenate([[0], np.cumsum(counts)])[np.searchsorted(values, self.grid, side="right")]
        self.bins += np.bincount(
            np.searchsorted(self.edges, values, side="right"), weights=counts, minlength=self.bins.size
        )
        self.seen = int(cumulative[-1])

    def result(self) -> tuple[float, list[float]]:
        """(KS statistic, PSI bin shares)."""
        import numpy as np

        reference = np.interp(self.grid, self.grid, self.probs, left=0.0, right=1.0)  # at its own grid points
        gaps = np.abs(self.at_grid / self.total - reference)
        statistic = max(self.statistic, float(gaps.max()) if gaps.size else 0.0)
        return statistic, [float(c) / float(self.total) for c in self.bins]


class BatchStats(Protocol):
    """What :func:`.drift.check_drift` reads of a batch."""

    rows: int

    def has(self, name: str) -> bool: ...
    def numeric(self, name: str) -> Iterator[tuple[Any, Any]]: ...
    def numeric_total(self, name: str) -> int: ...
    def categories(self, name: str) -> dict[str, int]: ...
    def texts(self, name: str) -> Iterable[str]: ...


class FrameStats:
    """A typed DataFrame's statistics."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame, self.rows = frame, len(frame)

    def has(self, name: str) -> bool:
        return name in self.frame.columns

    def _values(self, name: str) -> Any:
        return self.frame[name].dropna().astype("float64").to_numpy()

    def numeric_total(self, name: str) -> int:
        return int(self._values(name).size)

    def numeric(self, name: str) -> Iterator[tuple[Any, Any]]:
        import numpy as np

        values, counts = np.unique(self._values(name), return_counts=True)
        yield values, counts

    def categories(self, name: str) -> dict[str, int]:
        series = self.frame[name].astype("string").fillna(MISSING).value_counts()
        return {str(value): int(count) for value, count in series.items()}

    def texts(self, name: str) -> Iterable[str]:
        return (str(t) for t in self.frame[name].dropna())


class TableStats:
    """A SQL table's statistics, counted by the database and streamed from a server-side cursor."""

    def __init__(self, engine: Any, table: str) -> None:
        from sqlalchemy import column, func, select
        from sqlalchemy import table as table_clause

        from charter_guardrails.checks.integrity.table_hashing import table_columns

        self.engine, self.table = engine, table
        self.columns = [name for name, _ in table_columns(engine, table)]
        schema, _, name = table.rpartition(".")
        self.source = table_clause(name, *(column(c) for c in self.columns), schema=schema or None)
        self.rows = self._scalar(select(func.count()).select_from(self.source))

    def _scalar(self, statement: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one() or 0)

    def _stream(self, statement: Any) -> Iterator[list[Any]]:
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, max_row_buffer=FETCH_ROWS).execute(statement)
            yield from (list(rows) for rows in result.partitions(FETCH_ROWS))

    def has(self, name: str) -> bool:
        return name in self.columns

    def numeric_total(self, name: str) -> int:
        from sqlalchemy import func, select

        return self._scalar(select(func.count(self.source.c[name])))

    def numeric(self, name: str) -> Iterator[tuple[Any, Any]]:
        from sqlalchemy import Float, cast, func, select

        value = cast(self.source.c[name], Float).label("v")
        ordered = select(value, func.count()).where(self.source.c[name].is_not(None)).group_by(value).order_by(value)
        for rows in self._stream(ordered):
            values, counts = zip(*rows, strict=True)
            yield values, counts

    def categories(self, name: str) -> dict[str, int]:
        from sqlalchemy import Text, cast, func, select

        value = cast(self.source.c[name], Text).label("v")
        counted: dict[str, int] = {}
        for rows in self._stream(select(value, func.count()).group_by(value)):
            for text, count in rows:
                key = MISSING if text is None else str(text)
                counted[key] = counted.get(key, 0) + int(count)
        return counted

    def texts(self, name: str) -> Iterable[str]:
        from sqlalchemy import Text, cast, select

        statement = select(cast(self.source.c[name], Text)).where(self.source.c[name].is_not(None))
        return (str(row[0]) for rows in self._stream(statement) for row in rows)
