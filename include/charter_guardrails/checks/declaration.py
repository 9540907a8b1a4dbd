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
from charter_guardrails.core.messages import Message, Template
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import ColumnRole, SystemOrigin, TaskNature
from charter_guardrails.core.results import CheckResult, Severity, Verdict

TASK_NATURE_MISSING = Template("task_nature is not declared: say whether the task is routine or decision support")
TASK_NATURE_CONTRADICTS = Template(
    "task_nature is %(task_nature)s but decision_support is %(decision_support)s: declare one nature of the task"
)
SOURCING_MISSING = Template("sourcing is not declared: say whether the system is built in house or by a provider")
UNUSUAL_LEGAL_BASIS = Template("legal basis %(legal_basis)s is unusual for a public service; the DPO should confirm it")
SINGLE_APPROVER = Template("decision support with a single approver: name a second one to keep human control")
NO_RETENTION = Template("personal datasets without a retention period: %(datasets)s")
OBJECTIVE_MISSING = Template("objective is not declared: state the precise objective and its success metric")
DECLARED = Template(
    "use case %(use_case)s declares its purpose, legal basis (%(legal_basis)s) and %(datasets)s datasets"
)
DECLARED_WITH_WARNINGS = Template(
    "use case %(use_case)s declares its purpose, legal basis (%(legal_basis)s) and %(datasets)s datasets; "
    "%(warnings)s warning(s)"
)
CONTRADICTION = Template("use case %(use_case)s declares a contradiction: %(problem)s")


def _task_nature_findings(policy: UseCasePolicy) -> tuple[list[Message], list[Message]]:
    """(problems, warnings) about the task's nature (Maîtrise humaine 3)."""
    if policy.task_nature is None:
        return [], [TASK_NATURE_MISSING()]
    if (policy.task_nature is TaskNature.DECISION_SUPPORT) != policy.decision_support:
        return [
            TASK_NATURE_CONTRADICTS(
                task_nature=policy.task_nature.value, decision_support=str(policy.decision_support).lower()
            )
        ], []
    return [], []


def _sourcing_warnings(policy: UseCasePolicy) -> list[Message]:
    """Warnings about where the system comes from (Transparence 1)."""
    if policy.sourcing is None:
        return [SOURCING_MISSING()]
    return []


def _weak_declarations(policy: UseCasePolicy) -> list[Message]:
    warnings: list[Message] = []
    if policy.legal_basis.value in ("consent", "legitimate_interests"):
        warnings.append(UNUSUAL_LEGAL_BASIS(legal_basis=policy.legal_basis.value))
    if len(policy.approvers) < 2 and policy.decision_support:
        warnings.append(SINGLE_APPROVER())
    without_retention = [d.id for d in policy.datasets if d.personal_data and d.retention is None]
    if without_retention:
        warnings.append(NO_RETENTION(datasets=without_retention))
    if policy.objective is None:
        warnings.append(OBJECTIVE_MISSING())
    return warnings


def check_declaration(policy: UseCasePolicy) -> CheckResult:
    problems, warnings = _task_nature_findings(policy)
    warnings += _sourcing_warnings(policy) + _weak_declarations(policy)
    personal = [d.id for d in policy.datasets if d.personal_data]
    features = sorted(
        {c.name for d in policy.datasets for c in d.columns_with_role(ColumnRole.FEATURE, ColumnRole.FREE_TEXT)}
    )
    verdict = Verdict.FAIL if problems else Verdict.WARN if warnings else Verdict.PASS
    declared = {"use_case": policy.id, "legal_basis": policy.legal_basis.value, "datasets": len(policy.datasets)}
    if problems:
        message = CONTRADICTION(use_case=policy.id, problem=problems[0])
    elif warnings:
        message = DECLARED_WITH_WARNINGS(**declared, warnings=len(warnings))
    else:
        message = DECLARED(**declared)
    provider = policy.sourcing.provider if policy.sourcing and policy.sourcing.origin is SystemOrigin.EXTERNAL else None
    return CheckResult(
        check=CheckName.DECLARATION,
        verdict=verdict,
        severity=Severity.ERROR if problems else Severity.WARNING if warnings else Severity.INFO,
        engagements=CATALOGUE[CheckName.DECLARATION].engagement_ids(),
        message=message,
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
            "warnings": [warning.english for warning in warnings],
            "problems": [problem.english for problem in problems],
            "task_nature": policy.task_nature.value if policy.task_nature else None,
            "origin": policy.sourcing.origin.value if policy.sourcing else None,
            "provider": provider.name if provider else None,
            "compliance_commitment": provider.compliance_commitment if provider else None,
            "objective": policy.objective.statement if policy.objective else None,
            "success_metric": policy.objective.success_metric if policy.objective else None,
        },
    )
