"""The three quality checks on files, as the CLI and the Airflow tasks call them.

Reading goes through ``charter_guardrails.readers.files`` (the policy's CSV dialect, or Parquet) and
``apply_types``; an unreadable file is a failing CheckResult, not an exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.messages import Template
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import Dataset, DatasetFormat, DatasetRole
from charter_guardrails.core.results import CheckResult, Severity, Verdict, with_report_error

if TYPE_CHECKING:
    import pandas as pd

NOT_CHECKED_UNREADABLE = Template("%(check)s not checked: the data cannot be read (%(kind)s): %(detail)s")


def read_typed(dataset: Dataset, path: Path | None = None) -> pd.DataFrame:
    """Read a declared dataset (or a variant file in its format) and apply the declared types.
    Raises ``DatasetReadError`` for unreadable input."""
    from charter_guardrails.readers.files import apply_types, read_dataset

    frame, _unparseable = apply_types(read_dataset(dataset, path), dataset)
    return frame


def _unreadable(check: CheckName, dataset: Dataset, exc: Any) -> CheckResult:
    return CheckResult(
        check=check,
        verdict=Verdict.FAIL,
        severity=Severity.ERROR,
        engagements=CATALOGUE[check].engagement_ids(),
        dataset=dataset.id,
        message=NOT_CHECKED_UNREADABLE(check=str(check), kind=exc.kind, detail=str(exc)),
        evidence={"problems": [exc.to_json_dict()]},
    )


def profile_training(policy: UseCasePolicy, path: Path | None = None, *, out: Path | None = None) -> Path:
    """Profile the training data once and store the profile (no raw personal value in it).

    A ``format: sql`` training dataset (no ``path``) is profiled from a SELECT of the columns the profile
    compares (:func:`~.reference_profile.drift_features`), never the table whole: the raw rows, as the inference
    batches it is compared with are raw (its pseudonymised copy's masked free text would not compare)."""
    from charter_guardrails.checks.quality.reference_profile import (
        build_reference_profile,
        drift_features,
        save_profile,
    )
    from charter_guardrails.readers.files import apply_types, read_dataset

    dataset = policy.training_dataset
    if path is None and dataset.format is DatasetFormat.SQL:
        columns = [name for name, _kind in drift_features(policy)] or [dataset.columns[0].name]
        frame, _unparseable = apply_types(read_dataset(dataset, columns=columns), dataset)
        return save_profile(build_reference_profile(policy, frame, source=str(dataset.table)), out)
    target = path or dataset.resolve_path()
    return save_profile(build_reference_profile(policy, read_typed(dataset, target), source=str(target)), out)


def drift_of_file(
    policy: UseCasePolicy, batch: Path | None = None, *, reference: Path | None = None, dataset: str | None = None
) -> CheckResult:
    """Drift of an inference batch file. ``reference`` is a stored profile (``.json``) or a training
    file, which is then profiled once and stored next to the other profiles."""
    from charter_guardrails.checks.quality.reference_profile import load_profile, profile_path
    from charter_guardrails.core.errors import DatasetReadError

    ds = (
        policy.dataset(dataset)
        if dataset
        else (policy.datasets_with_role(DatasetRole.INFERENCE) or [policy.training_dataset])[0]
    )
    stored = profile_path(policy.id, policy.training_dataset.id)
    if reference is None and not stored.exists():
        # no training run has stored the profile yet: profile the policy's training file (or table) once, here
        training = policy.training_dataset
        try:
            reference = profile_training(policy) if training.format is DatasetFormat.SQL else training.resolve_path()
        except DatasetReadError as exc:
            return _unreadable(CheckName.DRIFT, ds, exc)
    reference = reference or stored
    if reference.suffix.lower() != ".json":
        try:
            reference = profile_training(policy, reference)
        except DatasetReadError as exc:
            return _unreadable(CheckName.DRIFT, ds, exc)
    profile = load_profile(reference)
    from charter_guardrails.checks.quality.drift import check_drift

    if ds.format is DatasetFormat.SQL and batch is None:  # counted in the database, never loaded whole
        return _drift_of_table(policy, ds, profile, str(reference))
    try:
        frame = read_typed(ds, batch or ds.resolve_path())
    except DatasetReadError as exc:
        return _unreadable(CheckName.DRIFT, ds, exc)
    return check_drift(policy, frame, profile, dataset=ds.id, profile_source=str(reference))


def _drift_of_table(policy: UseCasePolicy, dataset: Dataset, profile: dict[str, Any], source: str) -> CheckResult:
    """Drift of a ``format: sql`` dataset, its statistics counted in the database of the settings' ``data_url``."""
    from charter_guardrails.checks.quality.drift import check_drift
    from charter_guardrails.checks.quality.drift_stats import TableStats
    from charter_guardrails.core.errors import DatasetReadError

    try:
        with _data_engine() as engine:
            stats = TableStats(engine, str(dataset.table))
            return check_drift(policy, stats, profile, dataset=dataset.id, profile_source=source)
    except DatasetReadError as exc:
        return _unreadable(CheckName.DRIFT, dataset, exc)


def representativeness_of_file(
    policy: UseCasePolicy, path: Path | None = None, *, dataset: str | None = None
) -> CheckResult:
    from charter_guardrails.checks.quality.group_counts import TableGroups
    from charter_guardrails.checks.quality.representativeness import check_representativeness
    from charter_guardrails.core.errors import DatasetReadError

    ds = policy.dataset(dataset) if dataset else policy.training_dataset
    try:
        if ds.format is DatasetFormat.SQL and path is None:  # counted in the database, never loaded whole
            with _data_engine() as engine:
                return check_representativeness(policy, TableGroups(engine, str(ds.table)), dataset=ds.id)
        frame = read_typed(ds, path or ds.resolve_path())
    except DatasetReadError as exc:
        return _unreadable(CheckName.REPRESENTATIVENESS, ds, exc)
    return check_representativeness(policy, frame, dataset=ds.id)


@contextlib.contextmanager
def _data_engine() -> Iterator[Any]:
    """An engine on the database of ``format: sql`` datasets (the settings' ``data_url``), disposed after."""
    from sqlalchemy import create_engine

    from charter_guardrails.core.settings import get_settings

    engine = create_engine(get_settings().data_url)
    try:
        yield engine
    finally:
        engine.dispose()


def with_json_report(result: CheckResult, policy: UseCasePolicy, run_id: str | None) -> CheckResult:
    """Write the (already PII-free) result as a JSON report under the run's reports folder and link it.
    Quality results link their Data Docs instead and are returned unchanged."""
    import json

    from charter_guardrails.checks.quality.suite_run import safe_run_name
    from charter_guardrails.core.settings import get_settings

    if result.report_path:
        return result
    folder = get_settings().reports_dir / policy.id / safe_run_name(run_id)
    target = folder / f"{result.check}_{result.dataset or policy.id}.json"
    linked = result.model_copy(update={"report_path": str(target)})
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(linked.to_json_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    except (
        OSError
    ) as exc:  # a full or read-only reports folder must not lose the verdict: the caller records it, then fails
        return with_report_error(result, f"JSON {result.check} report", folder, exc)
    return linked
