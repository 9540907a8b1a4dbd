"""What representativeness counts of a training set, from a DataFrame or from a SQL table in its database.

Per group column: each group's row count, the rows without a group, and, when the model has a target and the
policy a positive label, each group's rows with that label. A table is counted by the database
(``GROUP BY`` with a conditional sum), never loaded; a frame by pandas, with the same text for each group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class GroupCounts:
    """One group column's counts: rows per group, rows without a group, positives per group (or None)."""

    counts: dict[str, int]
    missing: int
    positives: dict[str, int] | None


class GroupSource(Protocol):
    rows: int

    def has(self, column: str) -> bool: ...
    def groups(self, column: str, label: str | None, positive: str | None) -> GroupCounts: ...


class FrameGroups:
    """A typed DataFrame's group counts."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame, self.rows = frame, len(frame)

    def has(self, column: str) -> bool:
        return column in self.frame.columns

    def groups(self, column: str, label: str | None, positive: str | None) -> GroupCounts:
        series = self.frame[column].astype("string")
        counts = {str(k): int(v) for k, v in series.dropna().value_counts().items()}
        positives = None
        if label is not None and positive is not None:
            hit = (self.frame[label].astype("string") == positive).fillna(False)
            positives = {str(k): int(v) for k, v in series[hit].dropna().value_counts().items()}
        return GroupCounts(counts, int(series.isna().sum()), positives)


class TableGroups:
    """A SQL table's group counts, by the database."""

    def __init__(self, engine: Any, table: str) -> None:
        from sqlalchemy import column, func, select
        from sqlalchemy import table as table_clause

        from charter_guardrails.checks.integrity.table_hashing import table_columns

        self.engine = engine
        self.columns = [name for name, _ in table_columns(engine, table)]
        schema, _, name = table.rpartition(".")
        self.source = table_clause(name, *(column(c) for c in self.columns), schema=schema or None)
        with engine.connect() as conn:
            self.rows = int(conn.execute(select(func.count()).select_from(self.source)).scalar_one())

    def has(self, column: str) -> bool:
        return column in self.columns

    def groups(self, column: str, label: str | None, positive: str | None) -> GroupCounts:
        from sqlalchemy import Integer, Text, case, cast, func, literal, select

        group = cast(self.source.c[column], Text).label("g")
        measures: list[Any] = [func.count()]
        if label is not None and positive is not None:
            is_positive = cast(self.source.c[label], Text) == literal(positive)
            measures.append(func.sum(cast(case((is_positive, 1), else_=0), Integer)))
        counts: dict[str, int] = {}
        positives: dict[str, int] | None = {} if len(measures) == 2 else None
        missing = 0
        with self.engine.connect() as conn:
            for row in conn.execute(select(group, *measures).group_by(group)):
                if row[0] is None:
                    missing = int(row[1])
                    continue
                counts[str(row[0])] = int(row[1])
                if positives is not None and int(row[2] or 0):
                    positives[str(row[0])] = int(row[2])
        return GroupCounts(counts, missing, positives)
