"""The HTML report of a ``personal_data`` check: per column, what the scan found and what the policy allows.

Self-contained (no script, no external asset), masked examples only; laid out by
``templates/privacy_report.html`` (autoescaped: a column name cannot become markup).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from charter_guardrails.reporting.rendering import render

if TYPE_CHECKING:
    from charter_guardrails.checks.privacy.verdict import ColumnVerdict, PersonalDataOutcome


def _finding_rows(findings: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "entity_type": f.entity_type,
            "count": f.count,
            "share": f"{f.share:.2%}",
            "mean_score": f"{f.mean_score:.2f}",
            "max_score": f"{f.max_score:.2f}",
            "examples": ", ".join(f.masked_examples),
        }
        for f in findings
    ]


def _column_row(column: Any, verdict: ColumnVerdict | None) -> dict[str, Any]:
    return {
        "name": column.name,
        "kind": column.kind,
        "non_null": column.non_null,
        "rows": column.rows,
        "distinct": column.distinct,
        "findings": _finding_rows(column.findings),
        "suspects": _finding_rows(column.suspects),
        "status": "—" if verdict is None else ("OK" if verdict.ok else "INTERDIT"),
        "bad": verdict is not None and not verdict.ok,
        "reason": verdict.reason if verdict else "",
        "warning": verdict.warning if verdict else None,
    }


def render_privacy_report(outcome: PersonalDataOutcome, *, use_case: str, run_id: str) -> str:
    """The report's HTML page for ``outcome`` of ``use_case``'s run ``run_id``."""
    result, scan = outcome.result, outcome.scan
    verdicts = {c.column: c for c in outcome.columns}
    return render(
        "privacy_report.html",
        use_case=use_case,
        run_id=run_id,
        dataset=result.dataset or "",
        source=result.dataset or scan.source,
        verdict=result.verdict.value,
        summary=result.summary_in("fr"),
        engagements=list(result.engagements),
        mode=scan.mode,
        guarantee=scan.guarantee,
        scanned_rows=scan.scanned_rows,
        total_rows=scan.rows,
        min_score=scan.min_score,
        columns=[_column_row(column, verdicts.get(column.name)) for column in scan.columns],
    )
