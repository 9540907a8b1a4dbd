"""The gate is fail-closed: a matrix of every guardrail × failure never leads to publish."""

from __future__ import annotations

import itertools

import pytest
from charter_guardrails.core.results import CheckResult
from charter_guardrails.decision.gate import (
    NEVER_OVERRIDABLE,
    OVERRIDABLE,
    REFRESH_CHECKS,
    GateOutcome,
    HumanChoice,
    decide,
    review,
)


def _r(check: str, verdict: str = "pass") -> CheckResult:
    return CheckResult(check=check, verdict=verdict, summary=f"{check} {verdict}", dataset="training")


def _all_pass() -> list[CheckResult]:
    return [_r(c) for c in REFRESH_CHECKS]


def test_all_pass_needs_a_human_approval() -> None:
    decision = decide(_all_pass(), REFRESH_CHECKS)
    assert decision.outcome is GateOutcome.NEEDS_APPROVAL
    assert review(decision, HumanChoice.APPROVE, None).publish
    assert not review(decision, HumanChoice.REJECT, None).publish


@pytest.mark.parametrize("failed_check", REFRESH_CHECKS)
@pytest.mark.parametrize("failure", ["fail", "missing"])
@pytest.mark.parametrize("choice", list(HumanChoice))
def test_fail_closed_matrix(failed_check: str, failure: str, choice: HumanChoice) -> None:
    results = [r for r in _all_pass() if r.check != failed_check]
    if failure == "fail":
        results.append(_r(failed_check, "fail"))
    decision = decide(results, REFRESH_CHECKS)
    assert failed_check in decision.blocked_by
    assert decision.blocked_by == [failed_check]
    justification = "Données de qualité suffisante après revue manuelle du service"
    outcome = review(decision, choice, justification)
    overridable = failure == "fail" and failed_check in OVERRIDABLE
    # Only an explicit, justified override of an overridable guardrail can publish.
    assert outcome.publish == (overridable and choice is HumanChoice.OVERRIDE)
    if outcome.publish:
        assert outcome.decision == "overridden"
    if not overridable:
        assert decision.outcome is GateOutcome.BLOCKED


def test_override_needs_a_real_justification() -> None:
    decision = decide([*(r for r in _all_pass() if r.check != "fairness"), _r("fairness", "fail")], REFRESH_CHECKS)
    assert decision.outcome is GateOutcome.NEEDS_OVERRIDE
    assert not review(decision, HumanChoice.OVERRIDE, "ok").publish
    assert not review(decision, HumanChoice.OVERRIDE, None).publish
    assert not review(decision, HumanChoice.APPROVE, None).publish


@pytest.mark.parametrize("pair", list(itertools.combinations(sorted(OVERRIDABLE), 2)))
def test_any_hard_failure_beats_overridable_ones(pair: tuple[str, str]) -> None:
    for hard in sorted(NEVER_OVERRIDABLE & set(REFRESH_CHECKS)):
        results = [r for r in _all_pass() if r.check not in (*pair, hard)] + [_r(c, "fail") for c in (*pair, hard)]
        decision = decide(results, REFRESH_CHECKS)
        assert decision.outcome is GateOutcome.BLOCKED
        assert not review(decision, HumanChoice.OVERRIDE, "a long and careful justification text").publish


def test_worst_result_per_check_wins() -> None:
    results = [*_all_pass(), _r("quality", "fail")]  # one dataset passes, another fails
    assert "quality" in decide(results, REFRESH_CHECKS).failed
    warn = decide([*_all_pass(), _r("drift", "warn")], REFRESH_CHECKS)
    assert warn.outcome is GateOutcome.NEEDS_APPROVAL
    assert warn.warnings == ["drift"]
