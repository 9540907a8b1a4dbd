"""One place that imports Great Expectations: quiet loggers, no progress bars, no analytics."""

from __future__ import annotations

import logging
import os
from typing import Any

_QUIET = (
    "great_expectations",
    "great_expectations.core",
    "great_expectations.data_context",
    "great_expectations.datasource",
    "great_expectations.expectations",
    "great_expectations.execution_engine",
    "great_expectations.validator",
    "great_expectations.render",
    "great_expectations.checkpoint",
    "posthog",
    "urllib3",
)


def quiet_gx() -> None:
    """GX logs at INFO through structlog and the stdlib; a guardrail log line must stay readable."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)


def gx() -> Any:
    """The ``great_expectations`` module, imported quietly."""
    quiet_gx()
    import great_expectations

    quiet_gx()  # GX reconfigures some loggers on import
    return great_expectations


def ephemeral_context() -> Any:
    """A throw-away in-memory context: nothing is written unless we ask for Data Docs (``_gx_docs``)."""
    gx_module = gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx_module.get_context(mode="ephemeral", project_config=config)
