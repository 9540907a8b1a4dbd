"""One place that imports Great Expectations: quiet loggers, no progress bars, no analytics."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
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
    """A throw-away in-memory context: nothing is written unless we ask for Data Docs."""
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


def write_data_docs(
    context: Any, validation: Any, target: Path, *, suite_name: str, run_name: str, batch_identifier: str
) -> Path:
    """Data Docs of one validation result (already redacted) in ``target``; its ``index.html``."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    target.mkdir(parents=True, exist_ok=True)
    site = "charter"
    context.add_data_docs_site(
        site,
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(target)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)),
        batch_identifier=batch_identifier,
    )
    validation.meta = {k: v for k, v in (validation.meta or {}).items() if k in ("great_expectations_version",)}
    context.validation_results_store.set(key, validation)
    context.build_data_docs(site_names=[site], resource_identifiers=[key])
    return target / "index.html"
