"""Keep raw personal values out of quality results.

Great Expectations puts raw unexpected values in its results (``partial_unexpected_list``,
``partial_unexpected_counts``, ``unexpected_list``, and ``observed_value`` for some expectations).
For a column the policy marks personal (``personal_data`` other than ``none``, or a free-text column),
only counts and masked examples survive. The same redacted result feeds the CheckResult, the
ledger, XCom and the Data Docs, so none of them can show a raw value.
"""

from __future__ import annotations

import html
from collections import Counter
from typing import Any

from charter_guardrails.core.policy_models import ColumnRole, Dataset, PersonalDataCategory

#: Result keys that are counts or shares, never values.
NUMERIC_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "missing_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)
#: Expectations whose observed value is a type name or a number, never a cell value.
TYPE_EXPECTATIONS = ("expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type")
MAX_EXAMPLES = 5


def personal_columns(dataset: Dataset) -> set[str]:
    """Columns whose values must never leave the process."""
    return {
        c.name
        for c in dataset.columns
        if c.personal_data is not PersonalDataCategory.NONE or c.role is ColumnRole.FREE_TEXT
    }


def mask_value(value: Any) -> str:
    """``06 12 34 56 78`` -> ``06 ** ** ** 78``: keeps the shape, the first and last two characters of
    long values, and nothing of short ones (a short value is mostly its own content)."""
    text = str(value)
    alnum = [i for i, ch in enumerate(text) if ch.isalnum()]
    keep = set(alnum[:2] + alnum[-2:]) if len(alnum) >= 8 else set()
    masked = "".join(ch if (i in keep or not ch.isalnum()) else "*" for i, ch in enumerate(text))
    return masked if len(masked) <= 40 else masked[:37] + "..."


def _numeric(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or value is None


def redact_result(expectation_type: str, result: dict[str, Any], *, personal: bool) -> dict[str, Any]:
    """The JSON-safe subset of a GX expectation result we keep; masked when ``personal``."""
    out: dict[str, Any] = {k: result[k] for k in NUMERIC_KEYS if k in result}
    observed = result.get("observed_value")
    if "observed_value" in result:
        if not personal or _numeric(observed) or expectation_type in TYPE_EXPECTATIONS:
            out["observed_value"] = (
                observed if _numeric(observed) or isinstance(observed, (str, bool)) else _short(observed)
            )
        else:
            out["observed_value"] = "<redacted: personal column>"
    counts = result.get("partial_unexpected_counts")
    if counts is None and result.get("partial_unexpected_list") is not None:
        counts = unexpected_counts(result["partial_unexpected_list"])
    if counts:
        examples = counts[:MAX_EXAMPLES] if personal else counts[:10]
        out["unexpected_examples"] = [
            {"value": mask_value(c.get("value")) if personal else _short(c.get("value")), "count": c.get("count")}
            for c in examples
        ]
        if personal:
            out["masked"] = True
    return out


def unexpected_counts(values: list[Any]) -> list[dict[str, Any]]:
    """The ``partial_unexpected_counts`` GX's SUMMARY format derives from ``partial_unexpected_list``, derived
    here the same way (``great_expectations.expectations.expectation._format_map_output``): the values of a
    multi-column expectation as tuples, most frequent first, ties by value. The runner asks GX for the BASIC
    format, which has the same list but skips the row-index lists SUMMARY computes for every map expectation
    and the runner never keeps. Where GX gives no counts (unhashable or unorderable values), the values are
    tallied by their text, in the order of the list."""
    items = [tuple(v.values()) for v in values] if values and isinstance(values[0], dict) else values
    try:
        return [{"value": k, "count": n} for k, n in sorted(Counter(items).most_common(), key=lambda x: (-x[1], x[0]))]
    except TypeError:
        tally: dict[str, int] = {}
        for v in values:
            tally[str(v)] = tally.get(str(v), 0) + 1
        return [{"value": k, "count": n} for k, n in tally.items()]


def _short(value: Any) -> Any:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def redact_gx_result(validation_result: Any, personal_by_index: dict[int, bool]) -> None:
    """Rewrite a GX ``ExpectationSuiteValidationResult`` in place before it is stored or rendered
    (Data Docs render from it), so the HTML shows masked examples only."""
    for index, item in enumerate(validation_result.results):
        config = item.expectation_config
        personal = personal_by_index.get(index, False)
        raw = dict(item.result or {})
        kept = redact_result(config.type, raw, personal=personal)
        examples = kept.get("unexpected_examples", [])
        # Data Docs put these strings into HTML as they are: a cell holding <script> would run in the reader's browser.
        gx_view: dict[str, Any] = {
            k: _escaped(v) for k, v in kept.items() if k in NUMERIC_KEYS or k == "observed_value"
        }
        if examples:
            gx_view["partial_unexpected_counts"] = [
                {"value": _escaped(e["value"]), "count": e["count"]} for e in examples
            ]
            gx_view["partial_unexpected_list"] = [_escaped(e["value"]) for e in examples]
        item.result = gx_view
        if personal and exception_message(item.exception_info) is not None:
            item.exception_info = {
                "raised_exception": True,
                "exception_message": "error withheld: personal column",
                "exception_traceback": None,
            }


def _escaped(value: Any) -> Any:
    return html.escape(value) if isinstance(value, str) else value


def exception_message(info: Any) -> str | None:
    """The first exception message of a GX ``exception_info`` (flat, or keyed by metric), else None."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message") or "error") if info.get("raised_exception") else None
    for value in info.values():
        message = exception_message(value)
        if message is not None:
            return message
    return None
