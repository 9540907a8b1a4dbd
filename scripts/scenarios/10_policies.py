"""policies: validate every use-case policy and record its declaration through its policy-review DAG."""

from __future__ import annotations

from typing import Any


def run(ctx: Any) -> None:
    from charter_guardrails.core.policy import UseCasePolicy, policy_files

    for path in policy_files():
        policy = UseCasePolicy.from_file(path)
        ctx.dag_test(f"{policy.id}_policy_review")
