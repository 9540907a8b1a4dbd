"""Great Expectations suites drafted from a file's profile: ``<use_case>.<dataset>.json`` per dataset.

The suites are in the format of ``expectations/*.json`` (:func:`charter_guardrails.checks.quality.suites.load_suite`):
the column set, the row count, each column's type (the type lists of the existing suites), not-null for columns
without nulls, uniqueness for identifiers, value sets of low-cardinality columns and ranges of numbers (with a
margin). They pass on the file they were drafted from. Columns that may hold personal data, identifiers and free
text get no value set and no range: a drafted file never holds a raw personal value.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from charter_guardrails.core.policy_models import ColumnRole, ColumnType
from charter_guardrails.onboarding.columns import ColumnDraft

_TEXT = ["StringDtype", "str", "String", "TEXT", "VARCHAR", "CHARACTER VARYING"]
_DATETIME = [
    "datetime64[ns]",
    "datetime64[us]",
    "datetime64[ms]",
    "datetime64[s]",
    "DateTime",
    "TIMESTAMP",
    "DATETIME",
    "TIMESTAMP WITHOUT TIME ZONE",
]
#: The type lists of the existing suites: pandas after the readers' conversion, then SQL types.
TYPE_LISTS: dict[ColumnType, list[str]] = {
    ColumnType.STRING: _TEXT,
    ColumnType.CATEGORY: _TEXT,
    ColumnType.INTEGER: ["Int64Dtype", "int64", "Integer", "INTEGER", "BIGINT", "SMALLINT"],
    ColumnType.FLOAT: ["Float64Dtype", "float64", "Float", "Numeric", "FLOAT", "REAL", "DOUBLE PRECISION", "NUMERIC"],
    ColumnType.BOOLEAN: ["BooleanDtype", "bool", "boolean", "Boolean", "BOOLEAN"],
    ColumnType.DATETIME: _DATETIME,
    ColumnType.DATE: [*_DATETIME[:5], "Date", "TIMESTAMP", "DATETIME", "DATE", "TIMESTAMP WITHOUT TIME ZONE"],
}
#: Share of the observed span added below and above a number's range.
RANGE_MARGIN = 0.1


def draft_suite(
    use_case: str,
    dataset: str,
    columns: list[ColumnDraft],
    *,
    min_rows: int,
    max_rows: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The suite of one dataset of the use case, as the JSON object of its file."""
    names = [c.name for c in columns]
    expectations: list[dict[str, Any]] = [
        _expect("expect_table_columns_to_match_set", {"column_set": names}, "schema: exactly the declared columns"),
        _expect(
            "expect_table_row_count_to_be_between",
            {"min_value": min_rows, "max_value": max_rows},
            "drafted: some rows, no more than the proportionality limit (datasets[].max_rows)",
        ),
    ]
    expectations += [
        _expect("expect_column_values_to_be_in_type_list", {"column": c.name, "type_list": TYPE_LISTS[c.type]})
        for c in columns
    ]
    expectations += [
        _expect("expect_column_values_to_not_be_null", {"column": c.name}, "no null in the file drafted from")
        for c in columns
        if c.profile.nulls == 0
    ]
    expectations += [
        _expect("expect_column_values_to_be_unique", {"column": c.name}, "an identifier names one row")
        for c in columns
        if c.role is ColumnRole.IDENTIFIER
    ]
    for column in columns:
        expectations += _value_expectations(column, now or datetime.now(UTC))
    return {
        "name": f"{use_case}.{dataset}",
        "expectations": expectations,
        "meta": {
            "use_case": use_case,
            "dataset": dataset,
            "charter": ["equite.2"],
            "drafted_by": "charter init: review each expectation against what the data must be, not only what it was",
        },
        "notes": None,
    }


def suite_json(suite: dict[str, Any]) -> str:
    """The suite file's text, indented like the existing suites."""
    return json.dumps(suite, indent=2, ensure_ascii=False) + "\n"


def _expect(type_: str, kwargs: dict[str, Any], why: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"severity": "error"}
    if why:
        meta["why"] = why
    return {"type": type_, "kwargs": kwargs, "meta": meta}


def _value_expectations(column: ColumnDraft, now: datetime) -> list[dict[str, Any]]:
    """Value set, range or "no date in the future" of one column; none that would write a value of a sensitive
    column (personal data, identifier, free text)."""
    profile = column.profile
    if column.type in (ColumnType.DATE, ColumnType.DATETIME) and isinstance(profile.maximum, str):
        latest = datetime.fromisoformat(profile.maximum)
        latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
        if latest > now:
            return []  # dates in the future are part of this data (planned dates): no bound drafted
        return [
            _expect(
                "expect_column_values_to_be_between",
                {"column": column.name, "max_value": {"$PARAMETER": "now"}},
                "no date in the future",
            )
        ]
    if column.sensitive:
        return []
    if profile.values is not None and column.type in (ColumnType.CATEGORY, ColumnType.STRING):
        return [
            _expect(
                "expect_column_values_to_be_in_set",
                {"column": column.name, "value_set": list(profile.values)},
                "the values found in the file drafted from: add those that may legitimately come",
            )
        ]
    if column.type in (ColumnType.INTEGER, ColumnType.FLOAT) and profile.minimum is not None:
        low, high = widened_range(profile.minimum, profile.maximum, integer=column.type is ColumnType.INTEGER)
        return [
            _expect(
                "expect_column_values_to_be_between",
                {"column": column.name, "min_value": low, "max_value": high},
                f"the observed range widened by {RANGE_MARGIN:.0%} of its span: set the bounds the values must keep",
            )
        ]
    return []


def widened_range(minimum: Any, maximum: Any, *, integer: bool) -> tuple[float | int, float | int]:
    """The observed range widened by :data:`RANGE_MARGIN` of its span, rounded outwards to a round step; a range
    that does not go below zero stays non-negative."""
    low, high = float(minimum), float(maximum)
    span = high - low or max(abs(low), 1.0)
    step = 10.0 ** math.floor(math.log10(span * RANGE_MARGIN)) if span * RANGE_MARGIN > 0 else 1.0
    if integer:
        step = max(step, 1.0)
    wide_low = math.floor((low - span * RANGE_MARGIN) / step) * step
    wide_high = math.ceil((high + span * RANGE_MARGIN) / step) * step
    if low >= 0 > wide_low:
        wide_low = 0.0
    if integer or step >= 1:
        return int(wide_low), int(wide_high)
    digits = max(0, -math.floor(math.log10(step)))
    return round(wide_low, digits), round(wide_high, digits)
