"""The approver's brief: what a human reads in the HITL form before approving, overriding or rejecting a refresh.

The brief is Markdown (``templates/approval_brief.md``): every value is escaped for Markdown, so a
column, group or summary cannot break its table or plant a link in the form the approver reads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.catalogue import CheckName
from charter_guardrails.core.evidence import FairnessEvidence
from charter_guardrails.reporting.rendering import render

if TYPE_CHECKING:
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.core.results import CheckResult
    from charter_guardrails.decision.gate import GateDecision

#: Checks whose metrics the approver weighs (gain against footprint) and which the brief lists one by one.
_METRIC_CHECKS = (CheckName.PERFORMANCE, CheckName.FOOTPRINT)
_MAX_GROUPS_CHARS = 3000


def _sections(results: list[CheckResult]) -> list[dict[str, Any]]:
    """The detail sections under the table, in the order of the results."""
    sections: list[dict[str, Any]] = []
    for r in results:
        evidence = r.typed_evidence()
        if isinstance(evidence, FairnessEvidence) and evidence.table:
            table = [row.model_dump(exclude_unset=True) for row in evidence.table]
            groups = json.dumps(table, ensure_ascii=False, indent=1)[:_MAX_GROUPS_CHARS]
            sections.append({"title": "Équité des prédictions par groupe", "block": groups, "items": []})
        if r.check in _METRIC_CHECKS and r.metrics:
            sections.append({"title": r.check, "block": None, "items": list(r.metrics.items())})
    return sections


def brief_context(policy: UseCasePolicy, results: list[CheckResult], decision: GateDecision) -> dict[str, Any]:
    """What the brief shows, as plain data; the template lays it out."""
    return {
        "title": policy.title,
        "purpose": policy.purpose,
        "overridable": list(decision.overridable) if decision.outcome.value == "needs_override" else [],
        "rows": [
            {"check": r.check, "dataset": r.dataset or "-", "verdict": r.verdict.value, "summary": r.summary_in("fr")}
            for r in results
        ],
        "sections": _sections(results),
        "reports": [(r.check, r.report_path) for r in results if r.report_path],
    }


def render_approval_brief(policy: UseCasePolicy, results: list[CheckResult], decision: GateDecision) -> str:
    """The approver's brief, in French Markdown: verdicts, metrics, fairness, footprint, reports."""
    return render("approval_brief.md", **brief_context(policy, results, decision)).rstrip("\n")
