"""The verdicts on an evaluation: the ``performance`` check (the gain over production or a naive
predictor, on the declared objective's metric) and the ``fairness`` check (between-group differences
against ``equity.max_metric_difference``).

:func:`~charter_guardrails.refresh.evaluation.evaluate_candidate` measures; this module judges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.messages import TEXT, Message, Template
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.results import CheckResult, Severity, Verdict
from charter_guardrails.refresh.evaluation import BOUNDED_FAIRNESS_METRICS, EvaluationReport


@dataclass
class _FairnessFindings:
    """The between-group differences of one evaluation, against the limit."""

    breaches: list[dict[str, Any]] = field(default_factory=list)
    worst_difference: float = 0.0
    small: dict[str, dict[str, int]] = field(default_factory=dict)
    uncompared: list[str] = field(default_factory=list)


def _fairness_findings(report: EvaluationReport, limit: float) -> _FairnessFindings:
    found = _FairnessFindings()
    for group in report.fairness:
        if group.small_groups:
            found.small[group.column] = group.small_groups
        if all(v is None for v in group.difference.values()):
            found.uncompared.append(group.column)
        for metric, difference in group.difference.items():
            if difference is None or metric not in BOUNDED_FAIRNESS_METRICS:
                continue
            found.worst_difference = max(found.worst_difference, difference)
            if difference > limit:
                values = {g: numbers[metric] for g, numbers in group.by_group.items()}
                found.breaches.append(
                    {
                        "column": group.column,
                        "metric": metric,
                        "difference": difference,
                        "lowest_group": min(values, key=lambda g: values[g]),
                        "highest_group": max(values, key=lambda g: values[g]),
                    }
                )
    return found


FAIRNESS_NOT_APPLICABLE = Template("no equity groups declared: fairness across groups is not applicable")
FAIRNESS_BREACH = Template(
    "%(metric)s differs by %(difference).3f across %(column)s (%(lowest_group)s vs %(highest_group)s)"
)
FAIRNESS_UNFAIR = Template("unfair predictions: %(breaches)s (limit %(limit)s)")
FAIRNESS_NOT_MEASURABLE = Template("fairness not measurable: fewer than two groups of the minimum size in %(columns)s")
FAIRNESS_FAIR = Template("predictions are fair across groups: largest difference %(difference).3f (limit %(limit)s)")
FAIRNESS_FAIR_PARTLY = Template(
    "predictions are fair across groups: largest difference %(difference).3f (limit %(limit)s); "
    "not measurable for %(columns)s"
)
PERFORMANCE_AGAINST_PRODUCTION = Template(
    "%(metric)s %(candidate).4f vs %(reference).4f for the production model: "
    "gain %(gain)+.4f (at least the minimum %(minimum)s)"
)
PERFORMANCE_BELOW_PRODUCTION = Template(
    "%(metric)s %(candidate).4f vs %(reference).4f for the production model: "
    "gain %(gain)+.4f (below the minimum %(minimum)s)"
)
PERFORMANCE_AGAINST_BASELINE = Template(
    "%(metric)s %(candidate).4f vs %(reference).4f for a naive baseline, since no model is in production "
    "(%(baseline)s): gain %(gain)+.4f (at least the minimum %(minimum)s)"
)
PERFORMANCE_BELOW_BASELINE = Template(
    "%(metric)s %(candidate).4f vs %(reference).4f for a naive baseline, since no model is in production "
    "(%(baseline)s): gain %(gain)+.4f (below the minimum %(minimum)s)"
)


def _baseline_message(report: EvaluationReport) -> Message:
    if report.baseline_message:
        return Message.from_json_dict(report.baseline_message)
    return TEXT(text=report.baseline_description)


def _fairness_verdict(report: EvaluationReport, found: _FairnessFindings, limit: float) -> tuple[Verdict, Message]:
    if not report.fairness:
        return Verdict.PASS, FAIRNESS_NOT_APPLICABLE()
    if found.breaches:
        described = [
            FAIRNESS_BREACH(
                metric=b["metric"],
                difference=b["difference"],
                column=b["column"],
                lowest_group=b["lowest_group"],
                highest_group=b["highest_group"],
            )
            for b in found.breaches
        ]
        return Verdict.FAIL, FAIRNESS_UNFAIR(breaches=described, limit=limit)
    if len(found.uncompared) == len(report.fairness):
        return Verdict.WARN, FAIRNESS_NOT_MEASURABLE(columns=found.uncompared)
    if found.uncompared:
        return Verdict.WARN, FAIRNESS_FAIR_PARTLY(
            difference=found.worst_difference, limit=limit, columns=found.uncompared
        )
    return Verdict.PASS, FAIRNESS_FAIR(difference=found.worst_difference, limit=limit)


def check_fairness(policy: UseCasePolicy, report: EvaluationReport) -> CheckResult:
    """Fail when a between-group difference of accuracy or selection rate exceeds ``equity.max_metric_difference``.

    :param policy: the use case (thresholds).
    :param report: from :func:`evaluate_candidate`.
    """
    limit = policy.equity.max_metric_difference
    found = _fairness_findings(report, limit)
    verdict, message = _fairness_verdict(report, found, limit)
    metrics: dict[str, float | int | None] = {
        "max_difference": found.worst_difference if report.fairness else None,
        "limit": limit,
        "groups_left_out": sum(len(v) for v in found.small.values()),
    }
    for group in report.fairness:
        for metric, difference in group.difference.items():
            metrics[f"{group.column}.{metric}.difference"] = difference
            metrics[f"{group.column}.{metric}.ratio"] = group.ratio.get(metric)
    return CheckResult(
        check=CheckName.FAIRNESS,
        verdict=verdict,
        severity=Severity.ERROR
        if verdict is Verdict.FAIL
        else (Severity.WARNING if verdict is Verdict.WARN else Severity.INFO),
        engagements=CATALOGUE[CheckName.FAIRNESS].engagement_ids(),
        message=message,
        metrics=metrics,
        evidence={
            "positive_label": report.positive_label,
            "max_metric_difference": limit,
            "breaches": found.breaches,
            "small_groups_left_out": found.small,
            "not_measurable": found.uncompared,
            "table": report.fairness_table(),
            "holdout_rows": report.holdout_rows,
        },
    )


def check_performance(policy: UseCasePolicy, report: EvaluationReport) -> CheckResult:
    """Fail when the candidate's gain over the reference is below ``model.min_gain``.

    The evaluation against the declared objective's metric (Transparence 2, Équité 1, Maîtrise humaine 1,
    Proportionnalité 2): a model is only retrained when the gain justifies it.

    :param policy: the use case (``model.min_gain``).
    :param report: from :func:`evaluate_candidate`.
    """
    minimum = policy.model.min_gain
    passed = report.gain >= minimum
    production = report.reference == "production"
    template = (
        (PERFORMANCE_AGAINST_PRODUCTION if passed else PERFORMANCE_BELOW_PRODUCTION)
        if production
        else (PERFORMANCE_AGAINST_BASELINE if passed else PERFORMANCE_BELOW_BASELINE)
    )
    message = template(
        metric=report.metric,
        candidate=report.candidate_score,
        reference=report.reference_score,
        gain=report.gain,
        minimum=minimum,
        **({} if production else {"baseline": _baseline_message(report)}),
    )
    return CheckResult(
        check=CheckName.PERFORMANCE,
        verdict=Verdict.PASS if passed else Verdict.FAIL,
        severity=Severity.INFO if passed else Severity.ERROR,
        engagements=CATALOGUE[CheckName.PERFORMANCE].engagement_ids(),
        message=message,
        metrics={
            "candidate": report.candidate_score,
            "reference": report.reference_score,
            "gain": report.gain,
            "min_gain": minimum,
            "production": report.production_score,
            "baseline": report.baseline_score,
            "holdout_rows": report.holdout_rows,
        },
        evidence={
            "metric": report.metric,
            "higher_is_better": report.higher_is_better,
            "reference": report.reference,
            "baseline": report.baseline_description,
            "candidate_metrics": report.candidate_metrics,
            "production_metrics": report.production_metrics,
        },
    )
