"""Drift of an inference batch against the training reference (Maîtrise humaine 1, Équité 2).

The reference profile is computed once, when the training data is validated, and stored as JSON
(``$CHARTER_HOME/profiles/<use_case>/<dataset>.json``), so checking a batch never re-reads the raw
training data. Per feature:

- numeric: Population Stability Index over the training deciles, and the two-sample
  Kolmogorov–Smirnov statistic against the stored quantile grid (p-value from ``scipy.stats.kstwo``);
- categorical: chi-square test of homogeneity on the counts (``scipy.stats.chi2_contingency``) and the
  Jensen–Shannon distance (``scipy.spatial.distance.jensenshannon``, base 2, in [0, 1]);
- free text: PSI of the message length (in words) and the out-of-vocabulary share of the batch's words.

A feature drifts when the change is both *material* (PSI or JS above the policy threshold) and
*significant* (test p-value below the policy minimum): large batches make tiny shifts significant,
small ones make noise look material; together they do not. Text drifts on length PSI or OOV share.

The reference profile itself (what it stores and why no personal value is in it) is built by
:mod:`charter_guardrails.checks.quality.reference_profile`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.quality.drift_stats import BatchStats, FrameStats, NumericAccumulator, TableStats
from charter_guardrails.checks.quality.reference_profile import (
    OTHER,
    bin_shares,
    build_reference_profile,
    drift_features,
    load_profile,
    profile_path,
    save_profile,
    token_hash,
    words,
)
from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.messages import Message, Template, joined
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import DatasetRole, DriftPolicy
from charter_guardrails.core.results import CheckResult, Severity, Verdict

if TYPE_CHECKING:
    import pandas as pd

NUMERIC_DRIFT = Template("PSI %(psi).3f > %(psi_max)s and KS p=%(pvalue).2g < %(pvalue_min)s")
CATEGORICAL_DRIFT = Template("Jensen-Shannon %(js).3f > %(js_max)s and chi-square p=%(pvalue).2g < %(pvalue_min)s")
TEXT_LENGTH_DRIFT = Template("length PSI %(psi).3f > %(psi_max)s")
VOCABULARY_DRIFT = Template("%(oov).0f%% of words unseen in training > %(oov_max).0f%%")
FEATURE_DRIFTED = Template("%(feature)s: %(reasons)s")
FEATURES_MISSING = Template("feature(s) absent or empty in the batch: %(features)s")
DRIFTED = Template("%(drifted)s of %(features)s feature(s) drifted from the training reference")
DRIFTED_WITH_DETAIL = Template(
    "%(drifted)s of %(features)s feature(s) drifted from the training reference — %(detail)s"
)
NO_DRIFT = Template("no drift on %(features)s feature(s) against the training reference")

# The profile API stays importable from here, where callers have always found it.
__all__ = [
    "build_reference_profile",
    "check_drift",
    "drift_features",
    "load_profile",
    "profile_path",
    "psi",
    "save_profile",
]

EPSILON = 1e-4


def psi(reference: list[float], batch: list[float]) -> float:
    """Population Stability Index; empty bins get a small epsilon so the log stays finite."""
    total = 0.0
    for r, b in zip(reference, batch, strict=True):
        r, b = max(r, EPSILON), max(b, EPSILON)
        total += (b - r) * math.log(b / r)
    return total


def _numeric(feature: dict[str, Any], batch: BatchStats, name: str) -> dict[str, Any] | None:
    """PSI and KS of a numeric feature (:class:`.drift_stats.NumericAccumulator`); None when it is empty."""
    from scipy.stats import kstwo

    m = batch.numeric_total(name)
    if not m:
        return None
    accumulator = NumericAccumulator(feature, m)
    for values, counts in batch.numeric(name):
        accumulator.add(values, counts)
    statistic, shares = accumulator.result()
    n = feature["n"]
    effective = max(1, round(n * m / (n + m)))
    pvalue = float(kstwo.sf(statistic, effective))
    value_psi = psi(feature["shares"], shares)
    return {"psi": round(value_psi, 4), "ks_statistic": round(statistic, 4), "ks_pvalue": pvalue, "batch_n": int(m)}


def _categorical(feature: dict[str, Any], counted: dict[str, int]) -> dict[str, Any]:
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency

    reference = feature["counts"]
    batch: dict[str, int] = {}
    for value, count in counted.items():
        key = value if value in reference or not feature.get("pooled_rare") else OTHER
        batch[key] = batch.get(key, 0) + int(count)
    categories = sorted(set(reference) | set(batch))
    ref_counts = [reference.get(c, 0) for c in categories]
    batch_counts = [batch.get(c, 0) for c in categories]
    distance = float(jensenshannon([max(c, 0) for c in ref_counts], batch_counts, base=2)) if sum(batch_counts) else 0.0
    table = [[r + 0.5 for r in ref_counts], [b + 0.5 for b in batch_counts]]  # 0.5: no zero expected cell
    pvalue = float(chi2_contingency(table, correction=False)[1]) if len(categories) > 1 else 1.0
    unseen = [c for c in categories if reference.get(c, 0) == 0]
    return {
        "js_distance": round(distance, 4),
        "chi2_pvalue": pvalue,
        "batch_n": int(sum(batch_counts)),
        "unseen_categories": len(unseen),
    }


def _text(feature: dict[str, Any], texts: Iterable[str]) -> dict[str, Any]:
    vocabulary = set(feature["vocabulary_sha256_16"])
    lengths: list[float] = []
    total = oov = 0
    for text in texts:
        tokens = words(text)
        lengths.append(float(len(tokens)))
        total += len(tokens)
        oov += sum(token_hash(token) not in vocabulary for token in tokens)
    return {
        "length_psi": round(psi(feature["length_shares"], bin_shares(lengths, feature["length_edges"])), 4)
        if lengths
        else 0.0,
        "oov_share": round(oov / total, 4) if total else 0.0,
        "reference_oov_share": feature.get("reference_oov_share"),
        "batch_n": len(lengths),
    }


def check_drift(
    policy: UseCasePolicy,
    frame: pd.DataFrame | BatchStats,
    profile: dict[str, Any],
    *,
    dataset: str | None = None,
    profile_source: str | None = None,
) -> CheckResult:
    """Compare a typed inference batch (a DataFrame, or a table's :class:`.drift_stats.TableStats`) with the
    stored training profile."""
    batch = frame if isinstance(frame, FrameStats | TableStats) else FrameStats(frame)
    thresholds = policy.drift
    ds = (
        policy.dataset(dataset)
        if dataset
        else (policy.datasets_with_role(DatasetRole.INFERENCE) or [policy.training_dataset])[0]
    )
    if profile.get("use_case") != policy.id:
        raise ConfigError(f"the reference profile belongs to use case {profile.get('use_case')!r}, not {policy.id!r}")
    per_feature: dict[str, Any] = {}
    drifted: list[str] = []
    missing: list[str] = []
    reasons: dict[str, list[Message]] = {}
    for name, feature in profile["features"].items():
        found = _feature_drift(feature, batch, name, thresholds) if batch.has(name) else None
        if found is None:
            missing.append(name)
            continue
        per_feature[name], reasons[name] = found
        if reasons[name]:
            drifted.append(name)
    failing = len(drifted) >= thresholds.max_drifted_features or bool(missing)
    return CheckResult(
        check=CheckName.DRIFT,
        verdict=Verdict.FAIL if failing else (Verdict.WARN if drifted else Verdict.PASS),
        severity=Severity.ERROR if failing else (Severity.WARNING if drifted else Severity.INFO),
        engagements=CATALOGUE[CheckName.DRIFT].engagement_ids(),
        dataset=ds.id,
        message=_drift_summary(per_feature, reasons, drifted, missing, failing=failing),
        metrics={
            "features": len(per_feature),
            "drifted_features": len(drifted),
            "batch_rows": batch.rows,
            "max_psi": max((f.get("psi", f.get("length_psi", 0.0)) for f in per_feature.values()), default=0.0),
            "max_js_distance": max((f.get("js_distance", 0.0) for f in per_feature.values()), default=0.0),
        },
        evidence={
            "features": per_feature,
            "drifted": drifted,
            "missing_features": missing,
            "thresholds": thresholds.model_dump(),
            "reference": {
                "profile": profile_source,
                "rows": profile.get("rows"),
                "created_at": profile.get("created_at"),
                "source": profile.get("source"),
            },
        },
    )


def _feature_drift(
    feature: dict[str, Any], batch: BatchStats, name: str, thresholds: DriftPolicy
) -> tuple[dict[str, Any], list[Message]] | None:
    """One feature's statistics and drift reasons, or None when a numeric feature is empty in the batch."""
    reasons: list[Message] = []
    if feature["kind"] == "numeric":
        numeric = _numeric(feature, batch, name)
        if numeric is None:
            return None
        stats = numeric
        if stats["psi"] > thresholds.psi_max and stats["ks_pvalue"] < thresholds.ks_pvalue_min:
            reasons.append(
                NUMERIC_DRIFT(
                    psi=stats["psi"],
                    psi_max=thresholds.psi_max,
                    pvalue=stats["ks_pvalue"],
                    pvalue_min=thresholds.ks_pvalue_min,
                )
            )
    elif feature["kind"] == "categorical":
        stats = _categorical(feature, batch.categories(name))
        if stats["js_distance"] > thresholds.js_max and stats["chi2_pvalue"] < thresholds.chi2_pvalue_min:
            reasons.append(
                CATEGORICAL_DRIFT(
                    js=stats["js_distance"],
                    js_max=thresholds.js_max,
                    pvalue=stats["chi2_pvalue"],
                    pvalue_min=thresholds.chi2_pvalue_min,
                )
            )
    else:
        stats = _text(feature, batch.texts(name))
        if stats["length_psi"] > thresholds.text_length_psi_max:
            reasons.append(TEXT_LENGTH_DRIFT(psi=stats["length_psi"], psi_max=thresholds.text_length_psi_max))
        if stats["oov_share"] > thresholds.vocabulary_oov_max:
            reasons.append(VOCABULARY_DRIFT(oov=100 * stats["oov_share"], oov_max=100 * thresholds.vocabulary_oov_max))
    stats.update({"kind": feature["kind"], "drifted": bool(reasons), "reasons": [r.english for r in reasons]})
    return stats, reasons


def _drift_summary(
    per_feature: dict[str, Any],
    reasons: dict[str, list[Message]],
    drifted: list[str],
    missing: list[str],
    *,
    failing: bool,
) -> Message:
    detail: list[Message] = [FEATURE_DRIFTED(feature=n, reasons=joined(reasons[n])) for n in drifted]
    if missing:
        detail.append(FEATURES_MISSING(features=missing))
    if failing or drifted:
        if detail:
            return DRIFTED_WITH_DETAIL(drifted=len(drifted), features=len(per_feature), detail=detail)
        return DRIFTED(drifted=len(drifted), features=len(per_feature))
    return NO_DRIFT(features=len(per_feature))
