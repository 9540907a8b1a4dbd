"""Proportionality: a declared purpose, only the declared columns, only the rows still in retention.

Proportionnalité 1 (AI only for a legitimate purpose within the institution's missions: a declared
purpose and legal basis) and 3 (data collection relevant in quantity and quality: only the declared
columns the purpose needs, a volume cap, only the rows still in retention). It also refuses decision
support without a human recourse, which the declaration check reports for Maîtrise humaine 6.

Which columns a model may use is decided here, once, for training, evaluation and inference:

- **model inputs** are the columns declared with role ``feature`` or ``free_text`` (never the target);
- the **label** is ``policy.model.target``;
- **sensitive attributes** are kept beside the data only to measure fairness per group; they are
  never model inputs (a model that routes a request must not look at the requester's age band);
- **identifiers** are dropped (training does not need them), **timestamps** are kept only to date
  the data period and to apply retention, never as inputs;
- **undeclared columns** are dropped before anything else sees the data, and listed by name only.

pandas is imported inside functions: task modules import this one at DAG parse time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.messages import Message, Template, joined
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import ColumnRole, Dataset
from charter_guardrails.core.results import CheckResult, Severity, Verdict

if TYPE_CHECKING:
    import pandas as pd

#: Shorter than this (after trimming), a purpose does not say what the system is for.
MIN_PURPOSE_CHARS = 20


def model_input_columns(policy: UseCasePolicy, dataset: Dataset | None = None) -> list[str]:
    """The columns a model may read, in declaration order: role ``feature`` or ``free_text``, never the target.

    :param policy: the use case.
    :param dataset: the dataset whose declaration is used; the training dataset by default.
    """
    dataset = dataset or policy.training_dataset
    return [
        c.name
        for c in dataset.columns_with_role(ColumnRole.FEATURE, ColumnRole.FREE_TEXT)
        if c.name != policy.model.target
    ]


def sensitive_columns(policy: UseCasePolicy, dataset: Dataset | None = None) -> list[str]:
    """Columns kept only to measure fairness: declared sensitive attributes and the equity group columns."""
    dataset = dataset or policy.training_dataset
    names = [c.name for c in dataset.columns_with_role(ColumnRole.SENSITIVE_ATTRIBUTE)]
    declared = {c.name for c in dataset.columns}
    for group in policy.equity.groups:
        if group.column in declared and group.column not in names:
            names.append(group.column)
    inputs = set(model_input_columns(policy, dataset))
    return [n for n in names if n not in inputs and n != policy.model.target]


def minimised_columns(policy: UseCasePolicy, dataset: Dataset | None = None) -> list[str]:
    """Every column the minimised frame keeps: inputs, the label (if declared), sensitive attributes, timestamps."""
    dataset = dataset or policy.training_dataset
    declared = {c.name for c in dataset.columns}
    keep = model_input_columns(policy, dataset)
    if policy.model.target in declared:
        keep.append(policy.model.target)
    keep += sensitive_columns(policy, dataset)
    keep += [c.name for c in dataset.columns_with_role(ColumnRole.TIMESTAMP) if c.name not in keep]
    if dataset.retention and dataset.retention.date_column not in keep:
        keep.append(dataset.retention.date_column)
    return keep


OVER_ROW_CAP = Template("%(rows)s rows received, above the declared cap of %(cap)s")
NO_ROW_WITHIN_RETENTION = Template("no row is left within the retention period")
PURPOSE_TOO_SHORT = Template("the purpose is missing or too short (%(length)s characters, at least %(minimum)s)")
NO_HUMAN_RECOURSE = Template("decision support without a human recourse channel (Maîtrise humaine 6)")
UNDECLARED_DROPPED = Template("%(count)s undeclared column(s) received and dropped before training")
MISSING_INPUTS = Template("declared model inputs are missing from the data: %(columns)s")
MISSING_LABEL = Template("the label %(label)s is missing from the data")
MISSING_RETENTION_COLUMN = Template("the retention date column %(column)s is missing from the data")
ROWS_KEPT = Template("%(kept)s/%(received)s rows kept")
MODEL_INPUTS = Template("%(count)s model inputs")
ROWS_EXCLUDED = Template("%(expired)s rows past retention and %(undated)s undated rows excluded")
COLUMNS_DROPPED = Template("%(count)s undeclared column(s) dropped")
REFUSED = Template("proportionality refused: %(problems)s (%(parts)s)")
MINIMISED = Template("data minimised to the declared purpose (%(parts)s)")


@dataclass
class _Findings:
    """What the steps of :func:`check_proportionality` found: refusals, warnings and what was minimised."""

    problems: list[Message] = field(default_factory=list)
    warnings: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class _Columns:
    declared: list[str]
    received: list[str]
    undeclared: list[str]
    inputs: list[str]
    kept: list[str]
    declared_unused: list[str]


@dataclass(frozen=True)
class _Retention:
    expired: int = 0
    undated: int = 0
    cutoff: datetime | None = None


def check_proportionality(
    policy: UseCasePolicy,
    dataset: Dataset,
    frame: pd.DataFrame,
    *,
    as_of: datetime,
    received: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, CheckResult]:
    """Minimise a dataset to what the declared purpose needs, and say what was removed.

    Fails when the purpose is missing, a declared model input or the label is absent, the volume
    cap is exceeded, decision support has no human recourse, or no row is left in retention.
    Warns when undeclared columns arrived (they are dropped either way). Rows past retention are
    excluded and counted: that is the rule working, not a failure.

    :param policy: the use case.
    :param dataset: the declared dataset ``frame`` was read from (training or inference).
    :param frame: the data, typed with :func:`charter_guardrails.readers.files.apply_types`.
    :param as_of: the reference instant for retention (timezone-aware, e.g. the run's logical date).
    :param received: every column the data has, when ``frame`` holds only those it needs (read with a column
        projection of :func:`minimised_columns`): the others are judged by name, never read. Default: ``frame``'s.
    :returns: the minimised frame (only the columns of :func:`minimised_columns`, only rows in retention)
        and the check result. The frame's index is reset.
    :raises ValueError: if ``as_of`` is naive (a configuration error, not bad data).
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("check_proportionality: as_of must be timezone-aware (UTC)")
    found = _Findings()
    is_training = policy.model.target in {c.name for c in dataset.columns}
    purpose = _check_purpose(policy, found)
    names = [str(c) for c in frame.columns] if received is None else [str(c) for c in received]
    absent = sorted((set(minimised_columns(policy, dataset)) & set(names)) - {str(c) for c in frame.columns})
    if absent:
        raise ValueError(f"check_proportionality: frame lacks columns it received that minimisation keeps: {absent}")
    columns = _check_columns(policy, dataset, names, is_training, found)
    minimised = frame.loc[:, columns.kept]
    # Proportionnalité 3, rows: the volume cap applies to what was received.
    if dataset.max_rows is not None and len(frame) > dataset.max_rows:
        found.problems.append(OVER_ROW_CAP(rows=len(frame), cap=dataset.max_rows))
    minimised, retention = _apply_retention(dataset, frame, minimised, as_of, found)
    if len(frame) and len(minimised) == 0:
        found.problems.append(NO_ROW_WITHIN_RETENTION())
    evidence = _evidence(policy, dataset, purpose, columns, retention, is_training, as_of, found)
    return minimised, _result(dataset, frame, minimised, columns, retention, evidence, found)


def _check_purpose(policy: UseCasePolicy, found: _Findings) -> str:
    """Proportionnalité 1 (a determined, explicit purpose) and Maîtrise humaine 6 (a human recourse)."""
    purpose = (policy.purpose or "").strip()
    if len(purpose) < MIN_PURPOSE_CHARS:
        found.problems.append(PURPOSE_TOO_SHORT(length=len(purpose), minimum=MIN_PURPOSE_CHARS))
    # The policy model refuses this already; a model_copy can bypass validation.
    if policy.decision_support and policy.human_recourse is None:
        found.problems.append(NO_HUMAN_RECOURSE())
    return purpose


def _check_columns(
    policy: UseCasePolicy, dataset: Dataset, received: list[str], is_training: bool, found: _Findings
) -> _Columns:
    """Proportionnalité 3, columns: only the declared columns the purpose needs are kept."""
    declared = [c.name for c in dataset.columns]
    undeclared = sorted(c for c in received if c not in declared)
    if undeclared:
        found.warnings.append(UNDECLARED_DROPPED(count=len(undeclared)))
    inputs = model_input_columns(policy, dataset)
    keep = minimised_columns(policy, dataset)
    missing_inputs = [c for c in inputs if c not in received]
    if missing_inputs:
        found.problems.append(MISSING_INPUTS(columns=missing_inputs))
    if is_training and policy.model.target not in received:
        found.problems.append(MISSING_LABEL(label=repr(policy.model.target)))
    return _Columns(
        declared=declared,
        received=received,
        undeclared=undeclared,
        inputs=inputs,
        kept=[c for c in keep if c in received],
        declared_unused=[c for c in declared if c not in keep],  # identifiers: declared, not needed to train
    )


def _apply_retention(
    dataset: Dataset, frame: pd.DataFrame, minimised: pd.DataFrame, as_of: datetime, found: _Findings
) -> tuple[pd.DataFrame, _Retention]:
    """Proportionnalité 3: rows past retention, and rows whose date is unknown, are excluded and counted."""
    import pandas as pd

    if dataset.retention is None:
        return minimised.reset_index(drop=True), _Retention()
    column = dataset.retention.date_column
    cutoff = as_of - timedelta(days=dataset.retention.days)
    if column not in frame.columns:
        found.problems.append(MISSING_RETENTION_COLUMN(column=repr(column)))
        return minimised.reset_index(drop=True), _Retention(cutoff=cutoff)
    dates = frame[column]
    if not isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = pd.to_datetime(dates, errors="coerce", utc=True, format="ISO8601")
    # a row whose date is unknown cannot be shown to be within retention: it is excluded too
    undated_mask = dates.isna()
    expired_mask = ~undated_mask & (dates < pd.Timestamp(cutoff))
    kept = minimised.loc[~(expired_mask | undated_mask).to_numpy()]
    return kept.reset_index(drop=True), _Retention(int(expired_mask.sum()), int(undated_mask.sum()), cutoff)


def _evidence(
    policy: UseCasePolicy,
    dataset: Dataset,
    purpose: str,
    columns: _Columns,
    retention: _Retention,
    is_training: bool,
    as_of: datetime,
    found: _Findings,
) -> dict[str, Any]:
    """The :class:`~charter_guardrails.core.evidence.ProportionalityEvidence` of the check: names only, never values."""
    return {
        "purpose": purpose,
        "legal_basis": policy.legal_basis.value,
        "decision_support": policy.decision_support,
        "human_recourse": policy.human_recourse.email if policy.human_recourse else None,
        "model_inputs": columns.inputs,
        "label": policy.model.target if is_training else None,
        "fairness_only_columns": sensitive_columns(policy, dataset),
        "kept_columns": columns.kept,
        "dropped_undeclared_columns": columns.undeclared,  # names only: values never leave this module
        "dropped_declared_columns": columns.declared_unused,
        "missing_declared_columns": sorted(c for c in columns.declared if c not in columns.received),
        "retention": (
            {
                "days": dataset.retention.days,
                "date_column": dataset.retention.date_column,
                "cutoff": retention.cutoff.isoformat() if retention.cutoff else None,
            }
            if dataset.retention
            else None
        ),
        "max_rows": dataset.max_rows,
        "as_of": as_of.isoformat(),
        "problems": [problem.english for problem in found.problems],
        "warnings": [warning.english for warning in found.warnings],
    }


def _result(
    dataset: Dataset,
    frame: pd.DataFrame,
    minimised: pd.DataFrame,
    columns: _Columns,
    retention: _Retention,
    evidence: dict[str, Any],
    found: _Findings,
) -> CheckResult:
    problems, warnings = found.problems, found.warnings
    rows_received, rows_kept = len(frame), len(minimised)
    parts = [ROWS_KEPT(kept=rows_kept, received=rows_received), MODEL_INPUTS(count=len(columns.inputs))]
    if retention.expired or retention.undated:
        parts.append(ROWS_EXCLUDED(expired=retention.expired, undated=retention.undated))
    if columns.undeclared:
        parts.append(COLUMNS_DROPPED(count=len(columns.undeclared)))
    message = REFUSED(problems=problems, parts=joined(parts)) if problems else MINIMISED(parts=joined(parts))
    return CheckResult(
        check=CheckName.PROPORTIONALITY,
        verdict=Verdict.FAIL if problems else (Verdict.WARN if warnings else Verdict.PASS),
        severity=Severity.ERROR if problems else (Severity.WARNING if warnings else Severity.INFO),
        engagements=CATALOGUE[CheckName.PROPORTIONALITY].engagement_ids(),
        message=message,
        metrics={
            "rows_received": rows_received,
            "rows_kept": rows_kept,
            "rows_past_retention": retention.expired,
            "rows_undated": retention.undated,
            "columns_received": len(columns.received),
            "columns_kept": len(columns.kept),
            "undeclared_columns_dropped": len(columns.undeclared),
            "model_inputs": len(columns.inputs),
        },
        evidence=evidence,
        dataset=dataset.id,
    )
