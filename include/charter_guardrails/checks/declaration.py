"""The declaration check: is the use case declared the way the charter asks?

Transparence 1 (compliance by design), Proportionnalité 1 and 2 (a declared, legitimate
purpose), Maîtrise humaine 6 (a human recourse for decision support). The policy model
already refuses the worst cases; this check reports what is declared, so that every run
carries the evidence, and warns on weak declarations.
"""

from __future__ import annotations

from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import ColumnRole
from charter_guardrails.core.results import CheckResult, Severity, Verdict


def check_declaration(policy: UseCasePolicy) -> CheckResult:
    warnings: list[str] = []
    if policy.legal_basis.value in ("consent", "legitimate_interests"):
        warnings.append(
            f"legal basis {policy.legal_basis.value} is unusual for a public service; the DPO should confirm it"
        )
    if len(policy.approvers) < 2 and policy.decision_support:
        warnings.append("decision support with a single approver: name a second one to keep human control")
    personal = [d.id for d in policy.datasets if d.personal_data]
    without_retention = [d.id for d in policy.datasets if d.personal_data and d.retention is None]
    if without_retention:
        warnings.append(f"personal datasets without a retention period: {without_retention}")
    features = sorted(
        {c.name for d in policy.datasets for c in d.columns_with_role(ColumnRole.FEATURE, ColumnRole.FREE_TEXT)}
    )
    verdict = Verdict.WARN if warnings else Verdict.PASS
    return CheckResult(
        check=CheckName.DECLARATION,
        verdict=verdict,
        severity=Severity.WARNING if warnings else Severity.INFO,
        engagements=CATALOGUE[CheckName.DECLARATION].engagement_ids(),
        summary=(
            f"use case {policy.id} declares its purpose, legal basis ({policy.legal_basis.value}) "
            f"and {len(policy.datasets)} datasets" + (f"; {len(warnings)} warning(s)" if warnings else "")
        ),
        metrics={
            "datasets": len(policy.datasets),
            "personal_datasets": len(personal),
            "approvers": len(policy.approvers),
        },
        evidence={
            "purpose": policy.purpose,
            "legal_basis": policy.legal_basis.value,
            "decision_support": policy.decision_support,
            "human_recourse": policy.human_recourse.email if policy.human_recourse else None,
            "declared_features": features,
            "warnings": warnings,
        },
    )
