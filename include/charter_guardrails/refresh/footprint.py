"""The footprint gate (Durabilité 1): is the refresh worth its ecological cost?

The charter asks that a system be "évalué en fonction du surcroît de performance … en regard de
son empreinte écologique". The gain (from :func:`charter_guardrails.refresh.evaluation.evaluate_candidate`,
positive = better, in the metric's unit) is divided by the energy of the training run and by its
emissions, and compared with the policy's thresholds. A training run above the energy budget
fails whatever its gain.
"""

from __future__ import annotations

import math
from typing import Any

from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.messages import Message, Template
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import FootprintPolicy
from charter_guardrails.core.results import CheckResult, Severity, Verdict
from charter_guardrails.refresh.energy import EnergyMeasurement

MEASURED_PER_KWH = Template(
    "%(wh).4f Wh, %(gco2e).4f gCO2e for a %(metric)s gain of %(gain)+.4f (%(per_kwh).4g per kWh)"
)
MEASURED_BELOW_RESOLUTION = Template(
    "%(wh).4f Wh, %(gco2e).4f gCO2e for a %(metric)s gain of %(gain)+.4f (energy below the meter's resolution)"
)
WORTH_FOOTPRINT = Template("the refresh is worth its footprint: %(measured)s")
NOT_WORTH_FOOTPRINT = Template("the refresh is not worth its footprint: %(problems)s [%(measured)s]")
OVER_BUDGET = Template("the training used %(kwh).6f kWh, above the budget of %(budget)s kWh")
WORSE_CANDIDATE = Template("the candidate is worse than the reference (gain %(gain)+.4f): its energy bought nothing")
LOW_GAIN_PER_KWH = Template("gain per kWh %(per_kwh).4g is below the minimum %(minimum)s")
LOW_GAIN_PER_GCO2E = Template("gain per gCO2e %(per_gco2e).4g is below the minimum %(minimum)s")


def _ratio(gain: float, cost: float) -> float | None:
    """gain / cost; ``None`` when the cost is below what the meter resolves (no meaningful ratio)."""
    if cost <= 0 or not math.isfinite(cost):
        return None
    return gain / cost


def check_footprint(policy: UseCasePolicy, gain: float, energy: EnergyMeasurement | dict[str, Any]) -> CheckResult:
    """Compare the gain per kWh (and per gCO2e) with the policy, and the energy with the budget.

    Fails when the energy exceeds ``footprint.max_kwh_per_training``, when the gain per kWh is below
    ``footprint.min_gain_per_kwh``, or when the gain per gCO2e is below ``footprint.min_gain_per_gco2e``
    (if set). A negative gain always fails: energy was spent for a worse model. When the energy is
    too small to measure (0 kWh), the per-kWh ratio is undefined and only the sign of the gain counts.

    :param policy: the use case (``footprint`` thresholds, ``model.metric`` for the unit).
    :param gain: the candidate's gain over the reference, positive = better.
    :param energy: the training run's :class:`~charter_guardrails.refresh.training.EnergyMeasurement`
        (or its JSON dict).
    """
    if isinstance(energy, dict):
        energy = EnergyMeasurement.from_json_dict(energy)
    footprint = policy.footprint
    per_kwh = _ratio(gain, energy.kwh)
    per_gco2e = _ratio(gain, energy.gco2e)
    problems = _footprint_problems(footprint, gain, energy, per_kwh, per_gco2e)
    metric = policy.model.metric
    measured = (
        MEASURED_PER_KWH(wh=energy.kwh * 1000, gco2e=energy.gco2e, metric=metric, gain=gain, per_kwh=per_kwh)
        if per_kwh is not None
        else MEASURED_BELOW_RESOLUTION(wh=energy.kwh * 1000, gco2e=energy.gco2e, metric=metric, gain=gain)
    )
    message = (
        NOT_WORTH_FOOTPRINT(problems=problems, measured=measured) if problems else WORTH_FOOTPRINT(measured=measured)
    )
    return CheckResult(
        check=CheckName.FOOTPRINT,
        verdict=Verdict.FAIL if problems else Verdict.PASS,
        severity=Severity.ERROR if problems else Severity.INFO,
        engagements=CATALOGUE[CheckName.FOOTPRINT].engagement_ids(),
        message=message,
        metrics={
            "gain": gain,
            "kwh": energy.kwh,
            "gco2e": energy.gco2e,
            "duration_s": energy.duration_s,
            "gain_per_kwh": per_kwh,
            "gain_per_gco2e": per_gco2e,
            "min_gain_per_kwh": footprint.min_gain_per_kwh,
            "min_gain_per_gco2e": footprint.min_gain_per_gco2e,
            "max_kwh_per_training": footprint.max_kwh_per_training,
        },
        evidence={
            "metric": metric,
            "gain_unit": f"{metric} points (positive = better)",
            "energy_method": energy.method,
            "country_iso_code": energy.country_iso_code,
            "problems": [problem.english for problem in problems],
        },
    )


def _footprint_problems(
    footprint: FootprintPolicy,
    gain: float,
    energy: EnergyMeasurement,
    per_kwh: float | None,
    per_gco2e: float | None,
) -> list[Message]:
    """Why the refresh is not worth its footprint; empty when it is."""
    problems: list[Message] = []
    if energy.kwh > footprint.max_kwh_per_training:
        problems.append(OVER_BUDGET(kwh=energy.kwh, budget=footprint.max_kwh_per_training))
    if gain < 0:
        problems.append(WORSE_CANDIDATE(gain=gain))
    elif per_kwh is not None and per_kwh < footprint.min_gain_per_kwh:
        problems.append(LOW_GAIN_PER_KWH(per_kwh=per_kwh, minimum=footprint.min_gain_per_kwh))
    if (
        gain >= 0
        and footprint.min_gain_per_gco2e is not None
        and per_gco2e is not None
        and per_gco2e < footprint.min_gain_per_gco2e
    ):
        problems.append(LOW_GAIN_PER_GCO2E(per_gco2e=per_gco2e, minimum=footprint.min_gain_per_gco2e))
    return problems
