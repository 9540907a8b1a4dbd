"""Evaluate a candidate against production on the same held-out rows: the gain, and fairness per group.

Both models predict the *same* holdout (the candidate's), so the gain compares like with like.
Without a production model the reference is a naive predictor (the training majority class, or
the training mean) and the evidence says so.

Fairness (Équité) uses fairlearn's ``MetricFrame`` per group column declared in
``policy.equity.groups``. Classifiers: accuracy and the selection rate of
``equity.positive_label``; regressors: the MAE. Groups with fewer holdout rows than
``min_group_size`` are left out of the comparison (too noisy to judge) and reported.

Evidence carries group values (an arrondissement code, an age band) and aggregates only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.messages import Message, Template
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import ModelSpec
from charter_guardrails.refresh.training import MISSING_CATEGORY, TrainedModel, label_series, metrics_for, score

if TYPE_CHECKING:
    import pandas as pd

#: Metrics where lower is better; the gain is then ``production - candidate``.
LOWER_IS_BETTER = frozenset({"mae"})
#: How the naive reference predictor is described when no model is in production.
BASELINE_MAJORITY = Template("naive predictor: always the training majority class %(value)s")
BASELINE_MEAN = Template("naive predictor: always the training mean (%(value).3f)")
#: The fairness metrics whose between-group difference is compared with ``equity.max_metric_difference``.
#: MAE is in the label's unit, so it is reported but not compared with a share.
BOUNDED_FAIRNESS_METRICS = frozenset({"accuracy", "selection_rate"})


@dataclass
class GroupFairness:
    """Fairness of the candidate's predictions across the groups of one column.

    :param column: the group column (e.g. ``arrondissement``).
    :param by_group: per compared group, each metric and ``count`` (holdout rows).
    :param difference: per metric, max - min over the compared groups.
    :param ratio: per metric, min / max over the compared groups.
    :param small_groups: groups left out (fewer than ``min_group_size`` rows), with their counts.
    """

    column: str
    min_group_size: int
    metrics: list[str]
    by_group: dict[str, dict[str, float]] = field(default_factory=dict)
    difference: dict[str, float | None] = field(default_factory=dict)
    ratio: dict[str, float | None] = field(default_factory=dict)
    small_groups: dict[str, int] = field(default_factory=dict)


@dataclass
class EvaluationReport:
    """Candidate vs reference on one holdout.

    :param reference: ``production`` or ``baseline`` (naive predictor, when there is no production model).
    :param gain: positive means the candidate is better, in the metric's unit.
    """

    use_case: str
    metric: str
    higher_is_better: bool
    holdout_rows: int
    candidate_score: float
    reference: str
    reference_score: float
    gain: float
    production_score: float | None
    baseline_score: float
    baseline_description: str
    candidate_metrics: dict[str, float]
    production_metrics: dict[str, float] | None
    fairness: list[GroupFairness] = field(default_factory=list)
    positive_label: str | None = None
    #: ``baseline_description`` as a message (``core.messages``), to render it in French.
    baseline_message: dict[str, Any] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        from charter_guardrails.core.json_values import json_safe

        data: dict[str, Any] = json_safe(asdict(self))
        return data

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> EvaluationReport:
        values = dict(data)
        values["fairness"] = [GroupFairness(**g) for g in values.get("fairness", [])]
        return cls(**values)

    def fairness_table(self) -> list[dict[str, Any]]:
        """One row per (column, group): the model card's and the approval form's fairness table."""
        rows: list[dict[str, Any]] = []
        for group in self.fairness:
            for value, numbers in group.by_group.items():
                rows.append({"column": group.column, "group": value, **numbers, "compared": True})
            for value, count in group.small_groups.items():
                rows.append({"column": group.column, "group": value, "count": count, "compared": False})
        return rows


def _pipeline_of(model: Any) -> Any:
    return model.pipeline if isinstance(model, TrainedModel) else model


def _predict(model: Any, frame: pd.DataFrame) -> Any:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _pipeline_of(model).predict(frame)


def evaluate_candidate(
    policy: UseCasePolicy,
    candidate: TrainedModel,
    production: TrainedModel | Any | None = None,
    holdout: pd.DataFrame | None = None,
) -> EvaluationReport:
    """Score the candidate and production on the same holdout, and measure fairness per group.

    :param policy: the use case.
    :param candidate: the model just trained.
    :param production: the production model (a :class:`TrainedModel` or a loaded pipeline), or ``None``.
    :param holdout: the rows to evaluate on; the candidate's holdout by default. It must hold the
        model inputs, the label and the group columns.
    :raises ValueError: no holdout, or the label is missing from it.
    """
    spec = policy.model
    holdout = _labelled_holdout(spec, candidate, holdout)
    y_true = label_series(holdout, spec.kind, spec.target)
    candidate_pred = _predict(candidate, holdout)
    candidate_metrics = metrics_for(spec.kind, y_true, candidate_pred)
    candidate_score = score(spec.metric, y_true, candidate_pred)
    higher_is_better = spec.metric not in LOWER_IS_BETTER
    baseline_score, baseline = _baseline(spec, candidate, y_true)

    production_score: float | None = None
    production_metrics: dict[str, float] | None = None
    if production is not None:
        production_pred = _predict(production, holdout)
        production_metrics = metrics_for(spec.kind, y_true, production_pred)
        production_score = score(spec.metric, y_true, production_pred)
    if production_score is not None:
        reference, reference_score = "production", production_score
    else:
        reference, reference_score = "baseline", baseline_score
    gain = candidate_score - reference_score if higher_is_better else reference_score - candidate_score

    return EvaluationReport(
        use_case=policy.id,
        metric=spec.metric,
        higher_is_better=higher_is_better,
        holdout_rows=len(holdout),
        candidate_score=candidate_score,
        reference=reference,
        reference_score=reference_score,
        gain=gain,
        production_score=production_score,
        baseline_score=baseline_score,
        baseline_description=baseline.english,
        baseline_message=baseline.to_json_dict(),
        candidate_metrics=candidate_metrics,
        production_metrics=production_metrics,
        fairness=_fairness(policy, holdout, y_true, candidate_pred),
        positive_label=policy.equity.positive_label,
    )


def _labelled_holdout(spec: ModelSpec, candidate: TrainedModel, holdout: pd.DataFrame | None) -> pd.DataFrame:
    """The holdout to evaluate on (the candidate's by default), without the rows that have no label."""
    holdout = holdout if holdout is not None else candidate.holdout
    if holdout is None:
        raise ValueError("evaluate_candidate: no holdout given and the candidate kept none")
    if spec.target not in holdout.columns:
        raise ValueError(f"evaluate_candidate: the label {spec.target!r} is missing from the holdout")
    return holdout.loc[holdout[spec.target].notna().to_numpy()].reset_index(drop=True)


def _baseline(spec: ModelSpec, candidate: TrainedModel, y_true: Any) -> tuple[float, Message]:
    """The naive predictor's score on the holdout, and what it predicts."""
    baseline_value = candidate.baseline_prediction
    if baseline_value is None:  # a reloaded model without one: fall back to the holdout's own majority / mean
        baseline_value = str(y_true.value_counts().idxmax()) if spec.kind == "text_classifier" else float(y_true.mean())
    baseline_score = score(spec.metric, y_true, [baseline_value] * len(y_true))
    baseline = (
        BASELINE_MAJORITY(value=repr(baseline_value))
        if spec.kind == "text_classifier"
        else BASELINE_MEAN(value=float(baseline_value))
    )
    return baseline_score, baseline


def _fairness(policy: UseCasePolicy, holdout: pd.DataFrame, y_true: Any, y_pred: Any) -> list[GroupFairness]:
    import functools

    import numpy as np
    from fairlearn.metrics import MetricFrame, selection_rate
    from sklearn.metrics import accuracy_score, mean_absolute_error

    spec = policy.model
    positive = policy.equity.positive_label
    functions: dict[str, Any]
    if spec.kind == "text_classifier":
        functions = {"accuracy": accuracy_score}
        if positive is not None:
            # the share of rows the model routes to the positive label
            functions["selection_rate"] = functools.partial(selection_rate, pos_label=positive)
    else:
        functions = {"mae": mean_absolute_error}
    y_true_arr = np.asarray(y_true)
    y_pred_arr = np.asarray(y_pred)
    out: list[GroupFairness] = []
    for group in policy.equity.groups:
        report = GroupFairness(column=group.column, min_group_size=group.min_group_size, metrics=list(functions))
        if group.column not in holdout.columns:
            report.small_groups = {}
            report.difference = {m: None for m in functions}
            report.ratio = {m: None for m in functions}
            out.append(report)
            continue
        groups = holdout[group.column].astype("string").fillna(MISSING_CATEGORY).astype(object).to_numpy()
        values, counts = np.unique(groups, return_counts=True)
        sizes = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
        compared = {v for v, c in sizes.items() if c >= group.min_group_size}
        report.small_groups = {v: c for v, c in sorted(sizes.items()) if v not in compared}
        mask = np.isin(groups, list(compared))
        if len(compared) < 2:
            report.by_group = {v: {"count": sizes[v]} for v in sorted(compared)}
            report.difference = {m: None for m in functions}
            report.ratio = {m: None for m in functions}
            out.append(report)
            continue
        frame = MetricFrame(
            metrics=functions, y_true=y_true_arr[mask], y_pred=y_pred_arr[mask], sensitive_features=groups[mask]
        )
        by_group = frame.by_group
        report.by_group = {
            str(v): {**{m: float(by_group.loc[v, m]) for m in functions}, "count": sizes[str(v)]}
            for v in by_group.index
        }
        difference = frame.difference(method="between_groups")
        ratio = frame.ratio(method="between_groups")
        report.difference = {m: _finite(difference[m]) for m in functions}
        report.ratio = {m: _finite(ratio[m]) for m in functions}
        out.append(report)
    return out


def _finite(value: Any) -> float | None:
    import math

    number = float(value)
    return number if math.isfinite(number) else None
