"""The declaration check: is the use case declared the way the charter asks?

Transparence 1 (compliance by design: the policy-as-code declaration of every DAG, and for a system
from a provider, that provider's commitment to the charter), Maîtrise humaine 3 (the nature of the
task, which must agree with ``decision_support``), Maîtrise humaine 6 (a human recourse for decision
support), Proportionnalité 1 (a legitimate purpose and legal basis) and 2 (a precise objective with
its success metric). The policy model already refuses the worst cases; this check reports what is
declared, so that every run carries the evidence, fails on a declaration that contradicts itself,
and warns on missing or weak ones.
"""

from __future__ import annotations

from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import ColumnRole, SystemOrigin, TaskNature
from charter_guardrails.core.results import CheckResult, Severity, Verdict


def _task_nature_findings(policy: UseCasePolicy) -> tuple[list[str], list[str]]:
    """(problems, warnings) about the task's nature (Maîtrise humaine 3)."""
    if policy.task_nature is None:
        return [], ["task_nature is not declared: say whether the task is routine or decision support"]
    if (policy.task_nature is TaskNature.DECISION_SUPPORT) != policy.decision_support:
        return [
            f"task_nature is {policy.task_nature.value} but decision_support is "
            f"{str(policy.decision_support).lower()}: declare one nature of the task"
        ], []
    return [], []


def _sourcing_warnings(policy: UseCasePolicy) -> list[str]:
    """Warnings about where the system comes from (Transparence 1)."""
    if policy.sourcing is None:
        return ["sourcing is not declared: say whether the system is built in house or by a provider"]
    return []


def _weak_declarations(policy: UseCasePolicy) -> list[str]:
    warnings: list[str] = []
    if policy.legal_basis.value in ("consent", "legitimate_interests"):
        warnings.append(
            f"legal basis {policy.legal_basis.value} is unusual for a public service; the DPO should confirm it"
        )
    if len(policy.approvers) < 2 and policy.decision_support:
        warnings.append("decision support with a single approver: name a second one to keep human control")
    without_retention = [d.id for d in policy.datasets if d.personal_data and d.retention is None]
    if without_retention:
        warnings.append(f"personal datasets without a retention period: {without_retention}")
    if policy.objective is None:
        warnings.append("objective is not declared: state the precise objective and its success metric")
    return warnings


def check_declaration(policy: UseCasePolicy) -> CheckResult:
    problems, warnings = _task_nature_findings(policy)
    warnings += _sourcing_warnings(policy) + _weak_declarations(policy)
    personal = [d.id for d in policy.datasets if d.personal_data]
    features = sorted(
        {c.name for d in policy.datasets for c in d.columns_with_role(ColumnRole.FEATURE, ColumnRole.FREE_TEXT)}
    )
    verdict = Verdict.FAIL if problems else Verdict.WARN if warnings else Verdict.PASS
    summary = (
        f"use case {policy.id} declares its purpose, legal basis ({policy.legal_basis.value}) "
        f"and {len(policy.datasets)} datasets"
    )
    if problems:
        summary = f"use case {policy.id} declares a contradiction: {problems[0]}"
    elif warnings:
        summary += f"; {len(warnings)} warning(s)"
    provider = policy.sourcing.provider if policy.sourcing and policy.sourcing.origin is SystemOrigin.EXTERNAL else None
    return CheckResult(
        check=CheckName.DECLARATION,
        verdict=verdict,
        severity=Severity.ERROR if problems else Severity.WARNING if warnings else Severity.INFO,
        engagements=CATALOGUE[CheckName.DECLARATION].engagement_ids(),
        summary=summary,
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
            "problems": problems,
            "task_nature": policy.task_nature.value if policy.task_nature else None,
            "origin": policy.sourcing.origin.value if policy.sourcing else None,
            "provider": provider.name if provider else None,
            "compliance_commitment": provider.compliance_commitment if provider else None,
            "objective": policy.objective.statement if policy.objective else None,
            "success_metric": policy.objective.success_metric if policy.objective else None,
        },
    )
