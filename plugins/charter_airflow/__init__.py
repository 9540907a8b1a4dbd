"""Airflow 3 adapters for ``charter_guardrails``: tasks, the DAG factory, notifiers and the UI plugin.

Nothing here imports pandas, Great Expectations or Presidio at module level, so DAG files
that use it parse fast. Data work happens in ``execute`` (task bodies) only.
"""
