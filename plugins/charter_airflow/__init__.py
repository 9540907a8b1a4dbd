"""Airflow 3 adapters for ``charter_guardrails``: the DAG factory and its guardrail tasks, publish, alerts,
the Celery worker settings, the UI plugin and the provider's description (``provider.py``).

Nothing here imports pandas, Great Expectations or Presidio at module level, so DAG files
that use it parse fast. Data work happens in task bodies only.

Importing the package registers Airflow's configuration as a source of the library's settings, so that the
``[charter]`` section of ``airflow.cfg`` sets the folders and URLs (after the ``CHARTER_*`` variables).
"""

from __future__ import annotations

from charter_guardrails.core.settings import CONFIG_SECTION, register_config_source


def airflow_config_option(option: str) -> str | None:
    """``[charter] <option>`` of Airflow's configuration (``airflow.cfg`` or its variables), None when unset.

    Imported when first asked: every Airflow process has already loaded its configuration by then.
    """
    from airflow.configuration import conf

    value = conf.get(CONFIG_SECTION, option, fallback=None)
    return str(value) if value else None


register_config_source(airflow_config_option)
