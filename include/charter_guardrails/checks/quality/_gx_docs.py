"""Data Docs of one validation result, built by GX's own site builder at the cost of rendering alone.

GX's Jinja views create a new ``jinja2.Environment`` for every page they render, so each run parsed
and compiled the same 34 templates again: two thirds of the time the Data Docs took. The two views
below are GX's page and index views with Jinja's own remedy, a bytecode cache, shared by the process
and kept in memory: a template is compiled once, then loaded from its code. Jinja keys the cache by
template name and checks the source's checksum, so a changed template is compiled again, never stale.

Everything else is GX's: the site builder, the renderers, the templates and the static assets. The
validation result handed in is already redacted (``redaction.redact_gx_result``).

This module imports Great Expectations at import time (the views subclass GX's); it is imported only
when Data Docs are written.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2.bccache import Bucket, BytecodeCache


class _MemoryBytecodeCache(BytecodeCache):
    """Compiled templates kept in memory for the life of the process (Jinja ships file and memcached
    caches only; writing compiled code to disk is not wanted next to a guardrail's reports)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        """Fill ``bucket`` when this template was compiled before (Jinja then checks the checksum)."""
        with self._lock:
            code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Keep a freshly compiled template."""
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code

    def clear(self) -> None:
        with self._lock:
            self._code.clear()


TEMPLATE_CACHE = _MemoryBytecodeCache()


class CachedPageView(DefaultJinjaPageView):
    """GX's page view (the validation result page), its templates compiled once per process."""

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        super().__init__(custom_styles_directory=custom_styles_directory, custom_views_directory=custom_views_directory)
        self.env.bytecode_cache = TEMPLATE_CACHE


class CachedIndexPageView(DefaultJinjaIndexPageView):
    """GX's index page view, its templates compiled once per process."""

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        super().__init__(custom_styles_directory=custom_styles_directory, custom_views_directory=custom_views_directory)
        self.env.bytecode_cache = TEMPLATE_CACHE


def _view(cls: type) -> dict[str, str]:
    return {"module_name": __name__, "class_name": cls.__name__}


def site_config(target: Path) -> dict[str, Any]:
    """A filesystem site in ``target`` with the validations section and the index, through the cached views.
    The profiling section is off: it renders only results of runs named ``profiling``, which never occur."""
    return {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(target)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "view": _view(CachedIndexPageView)},
        "site_section_builders": {
            "validations": {"view": _view(CachedPageView)},
            "profiling": "None",
        },
    }


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
    context.add_data_docs_site(site, site_config(target))
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)),
        batch_identifier=batch_identifier,
    )
    validation.meta = {k: v for k, v in (validation.meta or {}).items() if k in ("great_expectations_version",)}
    context.validation_results_store.set(key, validation)
    context.build_data_docs(site_names=[site], resource_identifiers=[key])
    return target / "index.html"
