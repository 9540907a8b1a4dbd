"""Great Expectations suites as files: ``expectations/<use_case>.<dataset>.json``.

A suite file is GX 1.x suite JSON (``name``, ``expectations`` of ``{type, kwargs, meta}``, ``meta``).
Every expectation carries ``meta.severity``: ``error`` (fails the check) or ``warning`` (a warning verdict).
Kwargs may use GX suite parameters (``{"$PARAMETER": "now"}``); the runner supplies ``now`` and
``retention_start`` (now minus the dataset's retention), so "dates within retention" stays true over time.

:func:`load_suite` builds every expectation into GX, so an unknown expectation type or bad kwargs
fail at load time with the file and the expectation named, not in the middle of a DAG run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter_guardrails.core.errors import ConfigError, SuiteError
from charter_guardrails.core.settings import get_settings

SEVERITIES = ("error", "warning")
#: Suite parameters the runner knows how to fill.
KNOWN_PARAMETERS = ("now", "retention_start")


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, as written in the file."""

    index: int
    type: str
    kwargs: dict[str, Any]
    severity: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The data columns this expectation reads (empty for table-level expectations)."""
        cols: list[str] = []
        if isinstance(self.kwargs.get("column"), str):
            cols.append(self.kwargs["column"])
        for key in ("column_A", "column_B"):
            if isinstance(self.kwargs.get(key), str):
                cols.append(self.kwargs[key])
        if isinstance(self.kwargs.get("column_list"), list):
            cols.extend(str(c) for c in self.kwargs["column_list"])
        return cols

    @property
    def parameters(self) -> list[str]:
        return [v["$PARAMETER"] for v in self.kwargs.values() if isinstance(v, dict) and "$PARAMETER" in v]

    @property
    def label(self) -> str:
        cols = ",".join(self.columns)
        return f"#{self.index} {self.type}" + (f"({cols})" if cols else "")

    def to_json_dict(self) -> dict[str, Any]:
        return {"type": self.type, "kwargs": self.kwargs, "meta": self.meta}


@dataclass(frozen=True)
class LoadedSuite:
    name: str
    path: Path
    expectations: list[ExpectationSpec]
    meta: dict[str, Any]
    #: the GX ``ExpectationSuite`` built from the file (not attached to any context)
    gx_suite: Any

    @property
    def columns(self) -> set[str]:
        return {c for e in self.expectations for c in e.columns}

    def to_json_dict(self) -> dict[str, Any]:
        """The file's content, canonical: loading and dumping it gives the same JSON."""
        return {
            "name": self.name,
            "expectations": [e.to_json_dict() for e in self.expectations],
            "meta": self.meta,
            "notes": None,
        }


def suite_path(name: str, expectations_dir: Path | None = None) -> Path:
    """``name`` is a file name in ``expectations/`` (``citizen_requests.training.json``) or a path."""
    candidate = Path(name)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    root = expectations_dir or get_settings().expectations_dir
    target = (root / name).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ConfigError(f"suite {name!r} leaves the expectations folder {root}")
    return target


def load_suite(name_or_path: str | Path) -> LoadedSuite:
    """Read a suite file and build it into GX; raise :class:`SuiteError` naming file and expectation."""
    path = suite_path(str(name_or_path))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(
            path, "", "suite file not found; check datasets[].suite in the policy and the expectations folder"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(path, "", f"cannot read the file as UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SuiteError(path, "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise SuiteError(path, "", "the top level must be an object with name and expectations")
    unknown = sorted(set(raw) - {"name", "expectations", "meta", "notes", "id"})
    if unknown:
        raise SuiteError(path, "", f"unknown keys {unknown}; a suite has name, expectations, meta, notes")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SuiteError(path, "name", "required: the suite's name")
    items = raw.get("expectations")
    if not isinstance(items, list) or not items:
        raise SuiteError(path, "expectations", "required: a non-empty list of expectations")
    specs = [_spec(path, i, item) for i, item in enumerate(items)]
    from charter_guardrails.checks.quality._gx import ephemeral_context

    ephemeral_context()  # GX 1.x builds suites only while a context is active
    return LoadedSuite(
        name=name,
        path=path,
        expectations=specs,
        meta=dict(raw.get("meta") or {}),
        gx_suite=build_gx_suite(path, name, specs),
    )


def _spec(path: Path, index: int, item: Any) -> ExpectationSpec:
    where = f"expectations[{index}]"
    if not isinstance(item, dict):
        raise SuiteError(path, where, "an expectation is an object with type, kwargs and meta")
    extra = sorted(set(item) - {"type", "kwargs", "meta", "id", "notes", "description", "rendered_content", "severity"})
    if extra:
        raise SuiteError(path, where, f"unknown keys {extra}")
    type_ = item.get("type")
    if not isinstance(type_, str) or not type_.startswith("expect_"):
        raise SuiteError(
            path, where, f"type must be an expectation name such as expect_column_values_to_not_be_null, got {type_!r}"
        )
    where = f"{where} ({type_})"
    kwargs = item.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise SuiteError(path, where, "kwargs must be an object")
    meta = item.get("meta") or {}
    severity = meta.get("severity") if isinstance(meta, dict) else None
    if severity not in SEVERITIES:
        raise SuiteError(path, where, f"meta.severity must be one of {list(SEVERITIES)}, got {severity!r}")
    spec = ExpectationSpec(index=index, type=type_, kwargs=dict(kwargs), severity=str(severity), meta=dict(meta))
    for parameter in spec.parameters:
        if parameter not in KNOWN_PARAMETERS:
            raise SuiteError(
                path, where, f"unknown suite parameter {parameter!r}; the runner supplies {list(KNOWN_PARAMETERS)}"
            )
    return spec


_GX_SEVERITY = {"error": "critical", "warning": "warning"}


def build_gx_suite(path: Path, name: str, specs: list[ExpectationSpec]) -> Any:
    """A GX ``ExpectationSuite`` from the specs; needs an active context (the one that will validate)."""
    from charter_guardrails.checks.quality._gx import gx

    gx_module = gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.expectations.metadata_types import FailureSeverity

    suite = gx_module.ExpectationSuite(name=name)
    for spec in specs:
        where = f"expectations[{spec.index}] ({spec.type})"
        try:
            config = ExpectationConfiguration(
                type=spec.type,
                kwargs=spec.kwargs,
                meta=spec.meta,
                severity=FailureSeverity(_GX_SEVERITY[spec.severity]),
            )
            expectation = config.to_domain_obj()
        except Exception as exc:  # noqa: BLE001 - GX raises its own, pydantic and marshmallow errors for bad configs
            raise SuiteError(path, where, _describe(exc)) from None
        suite.add_expectation(expectation)
    return suite


def _describe(exc: Exception) -> str:
    kind = type(exc).__name__
    if kind == "ExpectationNotFoundError":
        return "unknown expectation type (not a Great Expectations 1.x expectation)"
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: one line per bad kwarg
        try:
            parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors()]
            return "bad kwargs: " + "; ".join(parts)
        except Exception:  # noqa: BLE001, S110 - an unreadable pydantic error falls back to the message below
            pass
    return f"bad kwargs: {str(exc).strip().splitlines()[0] if str(exc).strip() else kind}"


def gx_suite_json(gx_suite: Any) -> dict[str, Any]:
    """A GX suite back to the file format (for round-trip tests and Data Docs)."""
    out = []
    for expectation in gx_suite.expectations:
        config = expectation.configuration.to_json_dict()
        out.append({"type": config["type"], "kwargs": config["kwargs"], "meta": config.get("meta") or {}})
    return {"name": gx_suite.name, "expectations": out}
