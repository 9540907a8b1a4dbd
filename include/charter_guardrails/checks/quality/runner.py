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

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.quality.suite_run import InputInfo, run_suite, unreadable
from charter_guardrails.checks.quality.suites import LoadedSuite, load_suite
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import Dataset
from charter_guardrails.core.results import CheckResult
from charter_guardrails.core.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd


def _dataset(policy: UseCasePolicy, dataset: Dataset | str) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else policy.dataset(dataset)


def _suite(dataset: Dataset, suite: str | Path | LoadedSuite | None) -> LoadedSuite:
    if isinstance(suite, LoadedSuite):
        return suite
    name = suite or dataset.suite
    if not name:
        raise ConfigError(f"dataset {dataset.id!r} declares no suite (datasets[].suite) and none was given")
    return load_suite(name)


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
    info = InputInfo(
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

    return run_suite(policy, ds, loaded, info, batch_for, run_id=run_id, data_docs=data_docs, now=now)


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
    from charter_guardrails.core.errors import DatasetReadError
    from charter_guardrails.readers.files import apply_types, read_dataset

    ds = _dataset(policy, dataset)
    loaded = _suite(ds, suite)
    target = path or ds.resolve_path()
    try:
        raw = read_dataset(ds, target)
        stored = stored_type_problems(raw, ds) if not _is_csv(ds, target) else []
        frame, unparseable = apply_types(raw, ds)
    except DatasetReadError as exc:
        return unreadable(policy, ds, loaded, exc.kind, str(exc), source=str(target))
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
    from charter_guardrails.core.policy_models import DatasetFormat

    return ds.format is DatasetFormat.CSV and target.suffix.lower() != ".parquet" and not target.is_dir()


def stored_type_problems(raw: pd.DataFrame, ds: Dataset) -> list[dict[str, Any]]:
    """A typed file (Parquet) whose column is stored with another type than declared: a changed type,
    even when ``apply_types`` could still convert the values."""
    import pandas as pd

    from charter_guardrails.core.policy_models import ColumnType

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
            if column.type is ColumnType.DATE and _stored_as_dates(raw[column.name]):
                continue  # pyarrow reads a Parquet date32 column as datetime.date objects
            problems.append(
                {
                    "kind": "type",
                    "column": column.name,
                    "stored_as": str(raw[column.name].dtype),
                    "message": f"column {column.name}: stored as {raw[column.name].dtype}, "
                    f"declared {column.type.value}",
                }
            )
    return problems


def _stored_as_dates(values: pd.Series) -> bool:
    import datetime as dt

    present = values.dropna()
    return len(present) > 0 and bool(present.map(lambda v: isinstance(v, dt.date)).all())


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
            return unreadable(
                policy, ds, loaded, "missing", f"table {table} does not exist in {redact_url(url)}", source=source
            )
        reflected = inspector.get_columns(name, schema=schema or None)
        columns = [c["name"] for c in reflected]
        with engine.connect() as conn:
            rows = int(
                conn.execute(select(func.count()).select_from(sa_table(name, schema=schema or None))).scalar_one()
            )
    except SQLAlchemyError as exc:
        return unreadable(policy, ds, loaded, "sql", f"{source}: cannot be read ({type(exc).__name__})", source=source)
    finally:
        engine.dispose()
    info = InputInfo(source=source, columns=columns, row_count=rows)
    local = _sql_type_outcomes(loaded, {c["name"]: c["type"] for c in reflected}, url.split(":", 1)[0].split("+")[0])

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

    return run_suite(policy, ds, loaded, info, batch_for, run_id=run_id, data_docs=data_docs, now=now, local=local)


def _sql_type_outcomes(loaded: LoadedSuite, types: dict[str, Any], backend: str) -> dict[int, dict[str, Any]]:
    """Type-list expectations on SQLite and PostgreSQL, evaluated here against the reflected column types.

    SQLite reflects columns as SQLAlchemy's generic classes (``sqltypes.DATETIME``, ``BIGINT``) while GX 1.24
    resolves type names in the ``sqlalchemy.dialects.sqlite`` module, whose ``DATETIME`` is another class and
    which has no ``BIGINT``, so GX fails a correct column. On PostgreSQL GX compares the type's text with the
    names, so a ``VARCHAR(20)`` column fails a list that holds ``VARCHAR`` and ``String``. Names are resolved in
    ``sqlalchemy`` itself instead, and a column passes when its type is an instance of one of them (a
    ``VARCHAR(20)`` is a ``String``). Other databases are left to GX."""
    if backend not in ("sqlite", "postgresql", "postgres"):
        return {}
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
            "evaluated_by": f"charter ({backend} reflected types)",
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
