"""The guardrail checks: plain functions of (policy, data, context) that return a ``CheckResult``."""
