"""Airflow 3 adapters for ``charter_guardrails``: the DAG factory and its guardrail tasks, publish, alerts,
the Celery worker settings and the UI plugin.

Nothing here imports pandas, Great Expectations or Presidio at module level, so DAG files
that use it parse fast. Data work happens in task bodies only.
"""
