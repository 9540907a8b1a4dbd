"""The sections a run report draws from a result's evidence, read through the check's evidence model.

Each section belongs to one check of the catalogue: drift statistics per feature (drift), group shares
against the reference (representativeness), the per-group fairness table (fairness) and the energy
of the training run (footprint). Evidence that does not fit its model draws no section.
"""

from __future__ import annotations

from typing import Any

from charter_guardrails.core.catalogue import spec_of
from charter_guardrails.core.evidence import (
    DriftEvidence,
    DriftFeature,
    Evidence,
    FairnessEvidence,
    FootprintEvidence,
    RepresentativenessEvidence,
)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _score(feature: DriftFeature, evidence: DriftEvidence) -> dict[str, Any] | None:
    """The feature's main score (PSI, Jensen-Shannon distance or text length PSI) and its policy threshold."""
    limits = evidence.thresholds
    candidates = (
        ("psi", feature.psi, limits.psi_max if limits else None),
        ("js_distance", feature.js_distance, limits.js_max if limits else None),
        ("length_psi", feature.length_psi, limits.text_length_psi_max if limits else None),
    )
    return next(
        ({"name": name, "value": value, "threshold": limit} for name, value, limit in candidates if value is not None),
        None,
    )


def drift_features(evidence: DriftEvidence) -> list[dict[str, Any]]:
    """Per-feature drift: the feature's statistics, whether it drifted, and its main score with the threshold.

    ``histogram`` is always ``None``: the drift check stores statistics, not the distributions themselves
    (the reference profile keeps them, and it is not evidence).
    """
    return [
        {
            "feature": name,
            "stats": {"feature": name, **feature.model_dump(exclude_unset=True)},
            "histogram": None,
            "drifted": feature.drifted,
            "score": _score(feature, evidence),
        }
        for name, feature in evidence.features.items()
    ]


def group_shares(evidence: RepresentativenessEvidence) -> list[dict[str, Any]]:
    """Group shares against the reference: ``[{column, groups: [{group, share, reference, gap_pp, count}]}]``."""
    out = []
    for report in evidence.group_columns:
        rows = [
            {
                "group": group,
                "share": share.share,
                "reference": share.reference_share,
                "gap_pp": share.gap_pp,
                "count": share.count,
            }
            for group, share in report.groups.items()
        ]
        if rows:
            out.append({"column": report.column, "groups": rows})
    return out


def fairness_table(evidence: FairnessEvidence) -> list[dict[str, Any]]:
    """Rows of the per-group fairness table, as the fairness check wrote them."""
    return [row.model_dump(exclude_unset=True) for row in evidence.table]


def energy(metrics: dict[str, Any], evidence: FootprintEvidence) -> dict[str, Any] | None:
    """Energy (kWh), emissions (g CO₂e) and gain per kWh: the footprint check's metrics, and how it measured them."""
    kwh, grams = _number(metrics.get("kwh")), _number(metrics.get("gco2e"))
    if kwh is None and grams is None:
        return None
    return {
        "energy_kwh": kwh,
        "gco2e": grams,
        "gain": _number(metrics.get("gain")),
        "gain_per_kwh": _number(metrics.get("gain_per_kwh")),
        "method": evidence.energy_method,
    }


def typed_evidence(check: str, evidence: dict[str, Any]) -> Evidence | None:
    """A ledger row's evidence as its check's model; ``None`` for no evidence, an unknown check, or evidence
    that does not fit (a row edited in the database: ``charter audit verify`` reports it, the view shows it raw)."""
    if not evidence:
        return None
    try:
        return spec_of(check).evidence_model.model_validate(evidence)
    except ValueError:  # pydantic's ValidationError, or a check name the catalogue does not know
        return None


def evidence_sections(check: str, evidence: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """The sections the run report draws for a result of ``check``; empty for the other checks."""
    typed = typed_evidence(check, evidence)
    return {
        "drift": drift_features(typed) if isinstance(typed, DriftEvidence) else [],
        "groups": group_shares(typed) if isinstance(typed, RepresentativenessEvidence) else [],
        "fairness": fairness_table(typed) if isinstance(typed, FairnessEvidence) else [],
        "energy": energy(metrics, typed) if isinstance(typed, FootprintEvidence) else None,
    }
