"""Validate a dataset against its Great Expectations suite and turn the outcome into a CheckResult.

Three entry points share one core: :func:`validate_frame` (a pandas DataFrame already read),
:func:`validate_file` (CSV in the policy's French dialect, or Parquet, through
``charter_guardrails.readers.files``) and :func:`validate_table` (a SQL table through GX's SQL
datasource, so the metrics are computed inside SQLite or PostgreSQL and no row is pulled out).

Bad *data* is a verdict: a missing or extra column, a changed type, an empty dataset, a suite that
names an unknown column or an unreadable file give a failing CheckResult that names the problem.
A broken suite file or an unknown dataset is a configuration error and raises.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.quality import QUALITY_ENGAGEMENTS
from charter_guardrails.checks.quality.redaction import (
    exception_message,
    personal_columns,
    redact_gx_result,
    redact_result,
)
from charter_guardrails.checks.quality.suites import ExpectationSpec, LoadedSuite, build_gx_suite, load_suite
from charter_guardrails.core.policy import Dataset, UseCasePolicy
from charter_guardrails.core.results import CheckResult, Severity, Verdict, with_report_error
from charter_guardrails.core.settings import ConfigError, get_settings

if TYPE_CHECKING:
    import pandas as pd

#: GX result format: SUMMARY gives counts and up to 20 examples, which we mask or drop right after.
RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 20}


@dataclass
class _Input:
    """What the runner knows about the data before GX runs."""

    source: str
    columns: list[str]
    row_count: int | None
    problems: list[dict[str, Any]] = field(default_factory=list)


def _dataset(policy: UseCasePolicy, dataset: Dataset | str) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else policy.dataset(dataset)


def _suite(dataset: Dataset, suite: str | Path | LoadedSuite | None) -> LoadedSuite:
    if isinstance(suite, LoadedSuite):
        return suite
    name = suite or dataset.suite
    if not name:
        raise ConfigError(f"dataset {dataset.id!r} declares no suite (datasets[].suite) and none was given")
    return load_suite(name)


def safe_run_name(run_id: str | None) -> str:
    """A run id usable as a folder name (Airflow run ids hold ':' and '+')."""
    run_id = run_id or datetime.now(UTC).strftime("cli__%Y%m%dT%H%M%S") + f"_{uuid.uuid4().hex[:6]}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


def suite_parameters(dataset: Dataset, loaded: LoadedSuite, now: datetime | None = None) -> dict[str, Any]:
    """Values of ``$PARAMETER`` kwargs. Naive UTC, because SQL tables store naive timestamps."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    params: dict[str, Any] = {"now": now}
    needed = {p for e in loaded.expectations for p in e.parameters}
    if "retention_start" in needed:
        if dataset.retention is None:
            raise ConfigError(
                f"suite {loaded.path} uses retention_start but dataset {dataset.id!r} declares no retention"
            )
        params["retention_start"] = now - timedelta(days=dataset.retention.days)
    return params


# ---------------------------------------------------------------------------------------------
# entry points


def validate_frame(
    policy: UseCasePolicy,
    dataset: Dataset | str,
    frame: pd.DataFrame,
    *,
    suite: str | Path | LoadedSuite | None = None,
    run_id: str | None = None,
    source: str = "dataframe",
    unparseable: dict[str, int] | None = None,
    data_docs: bool = True,
    now: datetime | None = None,
    problems: list[dict[str, Any]] | None = None,
) -> CheckResult:
    """Validate a typed DataFrame (see :func:`charter_guardrails.readers.files.apply_types`)."""
    ds = _dataset(policy, dataset)
    loaded = _suite(ds, suite)
    frame = _naive_utc(frame)
    info = _Input(
        source=source, columns=[str(c) for c in frame.columns], row_count=len(frame), problems=list(problems or [])
    )
    for column, bad in sorted((unparseable or {}).items()):
        declared = next((c.type.value for c in ds.columns if c.name == column), "?")
        info.problems.append(
            {
                "kind": "type",
                "column": column,
                "count": bad,
                "message": f"column {column}: {bad} value(s) are not of the declared type {declared}",
            }
        )

    def batch_for(context: Any) -> Any:
        asset = context.data_sources.add_pandas("charter").add_dataframe_asset(ds.id)
        return asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})

    return _run(policy, ds, loaded, info, batch_for, run_id=run_id, data_docs=data_docs, now=now)


def validate_file(
    policy: UseCasePolicy,
    dataset: Dataset | str,
    path: Path | None = None,
    *,
    suite: str | Path | LoadedSuite | None = None,
    run_id: str | None = None,
    data_docs: bool = True,
    now: datetime | None = None,
) -> CheckResult:
    """Read a CSV (the policy's dialect) or Parquet file as the dataset declares, then validate it."""
    from charter_guardrails.readers.files import DatasetReadError, apply_types, read_dataset

    ds = _dataset(policy, dataset)
    loaded = _suite(ds, suite)
    target = path or ds.resolve_path()
    try:
        raw = read_dataset(ds, target)
        stored = stored_type_problems(raw, ds) if not _is_csv(ds, target) else []
        frame, unparseable = apply_types(raw, ds)
    except DatasetReadError as exc:
        return _unreadable(policy, ds, loaded, exc.kind, str(exc), source=str(target))
    return validate_frame(
        policy,
        ds,
        frame,
        suite=loaded,
        run_id=run_id,
        source=str(target),
        unparseable=unparseable,
        data_docs=data_docs,
        now=now,
        problems=stored,
    )


def _is_csv(ds: Dataset, target: Path) -> bool:
    from charter_guardrails.core.policy import DatasetFormat

    return ds.format is DatasetFormat.CSV and target.suffix.lower() != ".parquet" and not target.is_dir()


def stored_type_problems(raw: pd.DataFrame, ds: Dataset) -> list[dict[str, Any]]:
    """A typed file (Parquet) whose column is stored with another type than declared: a changed type,
    even when ``apply_types`` could still convert the values."""
    import pandas as pd

    from charter_guardrails.core.policy import ColumnType

    checks = {
        ColumnType.INTEGER: pd.api.types.is_integer_dtype,
        ColumnType.FLOAT: pd.api.types.is_numeric_dtype,
        ColumnType.BOOLEAN: pd.api.types.is_bool_dtype,
        ColumnType.DATE: pd.api.types.is_datetime64_any_dtype,
        ColumnType.DATETIME: pd.api.types.is_datetime64_any_dtype,
    }
    problems = []
    for column in ds.columns:
        check = checks.get(column.type)
        if column.name in raw.columns and check is not None and not check(raw[column.name].dtype):
            if column.type is ColumnType.INTEGER and pd.api.types.is_float_dtype(raw[column.name].dtype):
                continue  # integers with nulls are floats in many writers
            problems.append(
                {
                    "kind": "type",
                    "column": column.name,
                    "stored_as": str(raw[column.name].dtype),
                    "message": f"column {column.name}: stored as {raw[column.name].dtype}, declared {column.type.value}",
                }
            )
    return problems


def validate_table(
    policy: UseCasePolicy,
    dataset: Dataset | str,
    table: str | None = None,
    *,
    url: str | None = None,
    suite: str | Path | LoadedSuite | None = None,
    run_id: str | None = None,
    data_docs: bool = True,
    now: datetime | None = None,
) -> CheckResult:
    """Validate a SQL table in place through GX's SQL datasource (SQLite or PostgreSQL): the database
    computes the metrics, so a table larger than memory is fine."""
    from sqlalchemy import create_engine, func, inspect, select
    from sqlalchemy import table as sa_table
    from sqlalchemy.exc import SQLAlchemyError

    from charter_guardrails.ledger.db import redact_url

    ds = _dataset(policy, dataset)
    loaded = _suite(ds, suite)
    table = table or ds.table
    if not table:
        raise ConfigError(f"dataset {ds.id!r} has no table; give one")
    url = sql_url(url or get_settings().data_url)
    schema, _, name = table.rpartition(".")
    source = f"{redact_url(url)}#{table}"
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        if not inspector.has_table(name, schema=schema or None):
            return _unreadable(
                policy, ds, loaded, "missing", f"table {table} does not exist in {redact_url(url)}", source=source
            )
        reflected = inspector.get_columns(name, schema=schema or None)
        columns = [c["name"] for c in reflected]
        with engine.connect() as conn:
            rows = int(
                conn.execute(select(func.count()).select_from(sa_table(name, schema=schema or None))).scalar_one()
            )
    except SQLAlchemyError as exc:
        return _unreadable(policy, ds, loaded, "sql", f"{source}: cannot be read ({type(exc).__name__})", source=source)
    finally:
        engine.dispose()
    info = _Input(source=source, columns=columns, row_count=rows)
    local = _sqlite_type_outcomes(loaded, {c["name"]: c["type"] for c in reflected}) if url.startswith("sqlite") else {}

    def batch_for(context: Any) -> Any:
        backend = url.split(":", 1)[0]
        if backend.startswith("sqlite"):
            datasource = context.data_sources.add_sqlite("charter", connection_string=url)
        elif backend.startswith("postgresql"):
            datasource = context.data_sources.add_postgres("charter", connection_string=url)
        else:
            datasource = context.data_sources.add_sql("charter", connection_string=url)
        asset = datasource.add_table_asset(ds.id, table_name=name, **({"schema_name": schema} if schema else {}))
        return asset.add_batch_definition_whole_table("whole").get_batch()

    return _run(policy, ds, loaded, info, batch_for, run_id=run_id, data_docs=data_docs, now=now, local=local)


def _sqlite_type_outcomes(loaded: LoadedSuite, types: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Type-list expectations on SQLite, evaluated here: SQLite reflects columns as SQLAlchemy's
    generic classes (``sqltypes.DATETIME``, ``BIGINT``) while GX 1.24 resolves type names in the
    ``sqlalchemy.dialects.sqlite`` module, whose ``DATETIME`` is another class and which has no
    ``BIGINT``, so GX fails a correct column. Names are resolved in ``sqlalchemy`` itself instead."""
    import inspect as pyinspect

    import sqlalchemy

    outcomes: dict[int, dict[str, Any]] = {}
    for spec in loaded.expectations:
        if spec.type != "expect_column_values_to_be_in_type_list" or spec.kwargs.get("column") not in types:
            continue
        actual = types[spec.kwargs["column"]]
        classes = [
            getattr(sqlalchemy, n)
            for n in spec.kwargs.get("type_list") or []
            if pyinspect.isclass(getattr(sqlalchemy, n, None))
        ]
        outcomes[spec.index] = {
            "success": isinstance(actual, tuple(classes)) if classes else True,
            "result": {"observed_value": type(actual).__name__},
            "evaluated_by": "charter (SQLite reflected types)",
        }
    return outcomes


def sql_url(url: str) -> str:
    """psycopg 3 is the installed PostgreSQL driver; a bare postgresql:// URL would ask for psycopg2."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


# ---------------------------------------------------------------------------------------------
# core


def _naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """Timezone-aware columns as naive UTC, so they compare with the suite's naive UTC parameters
    the same way SQL timestamps do."""
    import pandas as pd

    aware = [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    if not aware:
        return frame
    out = frame.copy(deep=False)
    for column in aware:
        out[column] = out[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def _column_problems(ds: Dataset, loaded: LoadedSuite, info: _Input) -> tuple[list[dict[str, Any]], set[str]]:
    """Missing, extra and unknown columns; returns the problems and the columns absent from the data."""
    declared = [c.name for c in ds.columns]
    present = set(info.columns)
    problems: list[dict[str, Any]] = []
    missing = [c for c in declared if c not in present]
    if missing:
        problems.append(
            {
                "kind": "missing_column",
                "columns": missing,
                "message": f"declared column(s) missing from the data: {missing}",
            }
        )
    extra = [c for c in info.columns if c not in declared]
    if extra:
        problems.append(
            {
                "kind": "extra_column",
                "columns": extra,
                "message": f"column(s) in the data but not declared in the policy: {extra}",
            }
        )
    unknown = sorted(c for c in loaded.columns if c not in declared and c not in present)
    if unknown:
        problems.append(
            {
                "kind": "unknown_column",
                "columns": unknown,
                "message": f"suite {loaded.path.name} refers to column(s) neither declared nor present: {unknown}",
            }
        )
    if info.row_count == 0:
        problems.append({"kind": "empty", "message": "the dataset is empty (0 rows)"})
    return problems, {c for c in loaded.columns if c not in present}


def _run(
    policy: UseCasePolicy,
    ds: Dataset,
    loaded: LoadedSuite,
    info: _Input,
    batch_for: Any,
    *,
    run_id: str | None,
    data_docs: bool,
    now: datetime | None,
    local: dict[int, dict[str, Any]] | None = None,
) -> CheckResult:
    from charter_guardrails.checks.quality._gx import ephemeral_context

    started = time.perf_counter()
    column_problems, absent = _column_problems(ds, loaded, info)
    problems = column_problems + info.problems
    personal = personal_columns(ds)
    local = local or {}
    runnable = [e for e in loaded.expectations if not set(e.columns) & absent and e.index not in local]
    skipped = [e for e in loaded.expectations if set(e.columns) & absent]
    params = suite_parameters(ds, loaded, now)

    context = ephemeral_context()
    gx_suite = context.suites.add(build_gx_suite(loaded.path, loaded.name, runnable)) if runnable else None
    outcomes: list[dict[str, Any]] = []
    validation = None
    if gx_suite is not None:
        batch = batch_for(context)
        validation = batch.validate(gx_suite, result_format=RESULT_FORMAT, expectation_parameters=params)
        by_position = _match_results(runnable, gx_suite, validation)
        personal_by_index: dict[int, bool] = {}
        for position, (spec, item) in enumerate(by_position):
            is_personal = bool(set(spec.columns) & personal)
            personal_by_index[position] = is_personal
            message = exception_message(item.exception_info)
            outcome = {
                "expectation": spec.type,
                "index": spec.index,
                "columns": spec.columns,
                "severity": spec.severity,
                "success": bool(item.success),
                "result": redact_result(spec.type, dict(item.result or {}), personal=is_personal),
            }
            if message is not None:
                outcome["success"] = False
                outcome["error"] = "the expectation could not be evaluated" + (
                    "" if is_personal else f": {message.splitlines()[0][:200]}"
                )
            outcomes.append(outcome)
        redact_gx_result(validation, personal_by_index)
    for spec in loaded.expectations:
        if spec.index in local and spec not in skipped:
            outcomes.append(
                {
                    "expectation": spec.type,
                    "index": spec.index,
                    "columns": spec.columns,
                    "severity": spec.severity,
                    **local[spec.index],
                }
            )
    for spec in skipped:
        cols = [c for c in spec.columns if c in absent]
        outcomes.append(
            {
                "expectation": spec.type,
                "index": spec.index,
                "columns": spec.columns,
                "severity": spec.severity,
                "success": False,
                "result": {},
                "error": f"not evaluated: column(s) {cols} absent from the data",
            }
        )
    outcomes.sort(key=lambda o: o["index"])

    report, report_failure = None, None
    if data_docs and validation is not None:
        try:
            report = _build_data_docs(context, validation, policy, ds, loaded, run_id)
        except Exception as exc:  # noqa: BLE001 - full or read-only reports folder: the verdict is still recorded, then the task fails
            report_failure = exc
    result = _to_check_result(policy, ds, loaded, info, problems, outcomes, report, time.perf_counter() - started)
    if report_failure is not None:
        result = with_report_error(
            result, "Data Docs", get_settings().reports_dir / policy.id / safe_run_name(run_id), report_failure
        )
    return result


def _match_results(
    runnable: list[ExpectationSpec], gx_suite: Any, validation: Any
) -> list[tuple[ExpectationSpec, Any]]:
    """GX returns results in its own order; match them to the suite's expectations by id."""
    spec_by_id = {str(expectation.id): spec for expectation, spec in zip(gx_suite.expectations, runnable, strict=True)}
    pairs = sorted(
        ((spec_by_id[str(item.expectation_config.id)], item) for item in validation.results),
        key=lambda pair: pair[0].index,
    )
    # position i of GX's results is now pair i (redaction of the stored result works by position)
    validation.results = [item for _, item in pairs]
    return pairs


def _build_data_docs(
    context: Any, validation: Any, policy: UseCasePolicy, ds: Dataset, loaded: LoadedSuite, run_id: str | None
) -> Path:
    """Data Docs for this run only, from the already-redacted result."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    run_name = safe_run_name(run_id)
    target = get_settings().reports_dir / policy.id / run_name / "data_docs" / ds.id
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
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=loaded.name),
        run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)),
        batch_identifier=ds.id,
    )
    validation.meta = {k: v for k, v in (validation.meta or {}).items() if k in ("great_expectations_version",)}
    context.validation_results_store.set(key, validation)
    context.build_data_docs(site_names=[site], resource_identifiers=[key])
    return target / "index.html"


def _unreadable(
    policy: UseCasePolicy, ds: Dataset, loaded: LoadedSuite, kind: str, message: str, *, source: str
) -> CheckResult:
    return CheckResult(
        check="quality",
        verdict=Verdict.FAIL,
        severity=Severity.ERROR,
        engagements=QUALITY_ENGAGEMENTS,
        dataset=ds.id,
        summary=f"quality suite {loaded.name} not run: the data cannot be read ({kind}): {message}",
        metrics={
            "success_percent": 0.0,
            "evaluated_expectations": 0,
            "failed_error": 0,
            "failed_warning": 0,
            "rows": None,
        },
        evidence={
            "suite": loaded.name,
            "source": source,
            "problems": [{"kind": kind, "message": message}],
            "expectations": [],
        },
    )


def _describe(outcome: dict[str, Any]) -> str:
    cols = ",".join(outcome["columns"])
    what = outcome["expectation"].removeprefix("expect_")
    result = outcome.get("result") or {}
    count = result.get("unexpected_count")
    tail = (
        f" ({count} rows)"
        if count
        else (
            f" (observed {result['observed_value']})"
            if "observed_value" in result and not str(result.get("observed_value", "")).startswith("<redacted")
            else ""
        )
    )
    return f"{cols + ': ' if cols else ''}{what}{tail}"


def _to_check_result(
    policy: UseCasePolicy,
    ds: Dataset,
    loaded: LoadedSuite,
    info: _Input,
    problems: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    report: Path | None,
    seconds: float,
) -> CheckResult:
    evaluated = len(outcomes)
    successful = sum(1 for o in outcomes if o["success"])
    errors = [o for o in outcomes if o["severity"] == "error"]
    failed_error = [o for o in errors if not o["success"]]
    failed_warning = [o for o in outcomes if o["severity"] == "warning" and not o["success"]]
    success_percent = 100.0 * successful / evaluated if evaluated else 0.0
    error_success_percent = 100.0 * (len(errors) - len(failed_error)) / len(errors) if errors else 100.0
    failing = bool(problems) or error_success_percent < policy.quality.min_success_percent or (evaluated == 0)
    verdict = Verdict.FAIL if failing else (Verdict.WARN if failed_warning or failed_error else Verdict.PASS)
    reasons = [p["message"] for p in problems] + [_describe(o) for o in failed_error]
    if verdict is Verdict.FAIL:
        summary = (
            f"quality suite {loaded.name} FAILED on {ds.id}: {len(failed_error)} error expectation(s) failed"
            + (f", {len(problems)} input problem(s)" if problems else "")
            + " — "
            + "; ".join(reasons[:6])
            + (f"; … {len(reasons) - 6} more" if len(reasons) > 6 else "")
        )
    elif verdict is Verdict.WARN:
        summary = (
            f"quality suite {loaded.name} passed on {ds.id} with {len(failed_warning) + len(failed_error)} warning(s): "
            + "; ".join(_describe(o) for o in (failed_warning + failed_error)[:6])
        )
    else:
        summary = f"quality suite {loaded.name} passed on {ds.id}: {successful}/{evaluated} expectations met"
    return CheckResult(
        check="quality",
        verdict=verdict,
        severity=Severity.ERROR
        if verdict is Verdict.FAIL
        else (Severity.WARNING if verdict is Verdict.WARN else Severity.INFO),
        engagements=QUALITY_ENGAGEMENTS,
        dataset=ds.id,
        summary=summary,
        metrics={
            "success_percent": round(success_percent, 2),
            "error_success_percent": round(error_success_percent, 2),
            "evaluated_expectations": evaluated,
            "successful_expectations": successful,
            "failed_error": len(failed_error),
            "failed_warning": len(failed_warning),
            "input_problems": len(problems),
            "rows": info.row_count,
            "seconds": round(seconds, 3),
        },
        evidence={
            "suite": loaded.name,
            "suite_file": loaded.path.name,
            "source": info.source,
            "problems": problems,
            "expectations": outcomes,
            "redacted_columns": sorted(personal_columns(ds)),
            "data_docs": str(report) if report else None,
        },
        report_path=str(report) if report else None,
    )
