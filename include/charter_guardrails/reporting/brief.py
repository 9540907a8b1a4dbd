"""The approver's brief: what a human reads in the HITL form before approving, overriding or rejecting a refresh."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.core.results import CheckResult
    from charter_guardrails.decision.gate import GateDecision


def render_approval_brief(policy: UseCasePolicy, results: list[CheckResult], decision: GateDecision) -> str:
    """The approver's brief, in French Markdown: verdicts, metrics, fairness, footprint, reports."""
    labels = {"pass": "✅ conforme", "warn": "⚠️ à surveiller", "fail": "❌ non conforme"}
    lines = [f"## Mise à jour du modèle « {policy.title} »", "", f"**Finalité** : {policy.purpose}", ""]
    if decision.outcome.value == "needs_override":
        lines += [
            f"**Garde-fous en échec pouvant être levés avec justification** : {', '.join(decision.overridable)}.",
            "Choisissez *Override* et saisissez une justification écrite (≥ 20 caractères), ou *Reject*.",
            "",
        ]
    else:
        lines += ["Tous les garde-fous sont conformes. Choisissez *Approve* ou *Reject*.", ""]
    lines += ["| garde-fou | jeu de données | verdict | résumé |", "|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r.check} | {r.dataset or '-'} | {labels.get(r.verdict.value, r.verdict.value)} | {r.summary} |"
        )
    for r in results:
        if r.check == "fairness" and r.evidence.get("groups"):
            lines += [
                "",
                "### Équité des prédictions par groupe",
                "",
                "```",
                json.dumps(r.evidence["groups"], ensure_ascii=False, indent=1)[:3000],
                "```",
            ]
        if r.check in ("performance", "footprint") and r.metrics:
            lines += ["", f"### {r.check}", ""] + [f"- {k} : {v}" for k, v in r.metrics.items()]
    reports = [f"- {r.check} : `{r.report_path}`" for r in results if r.report_path]
    if reports:
        lines += ["", "### Rapports", "", *reports]
    return "\n".join(lines)
