"""The gate: combine every CheckResult of a run into a :class:`GateDecision`.

Fail-closed. A refresh can be published only when every expected guardrail has a result,
and then only after a human approves (Maîtrise humaine 2: no automatic recommendation is followed
unseen). A failed guardrail blocks it:

* integrity, personal data, proportionality and the kill switch can never be overridden
  (Sûreté 1 and 2, Proportionnalité);
* quality, representativeness, fairness, performance, drift and footprint may be overridden
  by an approver with a written justification (Maîtrise humaine 2), recorded in the audit chain.

A guardrail whose task never produced a result (crashed, upstream failed) counts as failed
and cannot be overridden: what was not checked is not known to be safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from charter_guardrails.core.catalogue import NEVER_OVERRIDABLE_CHECKS, OVERRIDABLE_CHECKS, CheckName
from charter_guardrails.core.results import CheckResult, Verdict

#: Overridable or not is the catalogue's call (``CheckSpec.overridable``), not the gate's.
OVERRIDABLE = OVERRIDABLE_CHECKS
NEVER_OVERRIDABLE = NEVER_OVERRIDABLE_CHECKS

#: Guardrails of a model refresh, in the order the DAG runs them.
REFRESH_CHECKS = (
    CheckName.KILL_SWITCH,
    CheckName.INTEGRITY,
    CheckName.PERSONAL_DATA,
    CheckName.QUALITY,
    CheckName.REPRESENTATIVENESS,
    CheckName.PROPORTIONALITY,
    CheckName.TRAINING,
    CheckName.PERFORMANCE,
    CheckName.FAIRNESS,
    CheckName.FOOTPRINT,
)
#: Guardrails of an inference batch.
INFERENCE_CHECKS = (
    CheckName.KILL_SWITCH,
    CheckName.INTEGRITY,
    CheckName.PERSONAL_DATA,
    CheckName.QUALITY,
    CheckName.DRIFT,
)

MIN_JUSTIFICATION_CHARS = 20


class GateOutcome(StrEnum):
    #: every guardrail passed: a human approves or rejects
    NEEDS_APPROVAL = "needs_approval"
    #: only overridable guardrails failed: a human may override with a justification, or reject
    NEEDS_OVERRIDE = "needs_override"
    #: a guardrail that cannot be overridden failed or is missing
    BLOCKED = "blocked"


class GateDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: GateOutcome
    failed: list[str] = Field(default_factory=list)
    overridable: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    reasons: dict[str, str] = Field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return self.outcome is GateOutcome.BLOCKED

    @property
    def blocked_by(self) -> list[str]:
        """The guardrails that failed; when none failed, those that never produced a result.

        A guardrail that did not run because an earlier one failed is not what blocked the run.
        """
        return sorted(self.failed) if self.failed else sorted(self.missing)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def decide(results: Iterable[CheckResult], expected: Iterable[str]) -> GateDecision:
    """Decide on the results of one run; several results of one check (one per dataset) combine to the worst."""
    by_check: dict[str, list[CheckResult]] = {}
    for result in results:
        by_check.setdefault(result.check, []).append(result)
    missing = [name for name in expected if name not in by_check]
    failed: list[str] = []
    warnings: list[str] = []
    # Reasons are read by people (the approval brief, a quarantine incident, the view): in French.
    reasons: dict[str, str] = {
        name: "aucun résultat : le garde-fou n'a pas tourné ou n'a pas abouti" for name in missing
    }
    for name, items in by_check.items():
        bad = [r for r in items if r.verdict is Verdict.FAIL]
        if bad:
            failed.append(name)
            reasons[name] = " ; ".join(r.summary_in("fr") for r in bad)
        elif any(r.verdict is Verdict.WARN for r in items):
            warnings.append(name)
    overridable = sorted(n for n in failed if n in OVERRIDABLE)
    hard = [n for n in failed if n not in OVERRIDABLE]
    if hard or missing:
        outcome = GateOutcome.BLOCKED
    elif overridable:
        outcome = GateOutcome.NEEDS_OVERRIDE
    else:
        outcome = GateOutcome.NEEDS_APPROVAL
    return GateDecision(
        outcome=outcome,
        failed=sorted(failed),
        overridable=overridable,
        missing=missing,
        warnings=sorted(warnings),
        reasons=reasons,
    )


class HumanChoice(StrEnum):
    APPROVE = "Approve"
    OVERRIDE = "Override"
    REJECT = "Reject"


class ReviewOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    publish: bool
    decision: str  # published | overridden | rejected
    reason: str


def review(decision: GateDecision, choice: str, justification: str | None) -> ReviewOutcome:
    """Apply a human's answer to a gate decision; anything inconsistent is a rejection (fail-closed)."""
    text = (justification or "").strip()
    if decision.blocked:
        return ReviewOutcome(
            publish=False, decision="rejected", reason=f"blocked by {decision.blocked_by}: no human answer can publish"
        )
    if choice == HumanChoice.REJECT:
        return ReviewOutcome(publish=False, decision="rejected", reason="rejected by the approver")
    if choice == HumanChoice.APPROVE:
        if decision.outcome is GateOutcome.NEEDS_APPROVAL:
            return ReviewOutcome(publish=True, decision="published", reason="approved")
        return ReviewOutcome(
            publish=False,
            decision="rejected",
            reason=(
                f"'Approve' cannot publish while {decision.overridable} failed: choose 'Override' with a justification"
            ),
        )
    if choice == HumanChoice.OVERRIDE:
        if decision.outcome is not GateOutcome.NEEDS_OVERRIDE:
            return ReviewOutcome(publish=True, decision="published", reason="approved (nothing to override)")
        if len(text) < MIN_JUSTIFICATION_CHARS:
            return ReviewOutcome(
                publish=False,
                decision="rejected",
                reason=f"an override needs a written justification of at least {MIN_JUSTIFICATION_CHARS} characters",
            )
        return ReviewOutcome(publish=True, decision="overridden", reason=f"override of {decision.overridable}: {text}")
    return ReviewOutcome(publish=False, decision="rejected", reason=f"unknown answer {choice!r}")
