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

What the profile stores, and why no personal value is in it:

- numeric columns: a 201-point quantile grid, decile edges and shares: aggregates, never rows;
- categorical columns: counts per category; in a personal column a category seen fewer than
  ``MIN_CATEGORY_COUNT`` times is pooled into ``__other__`` (a rare value can single a person out);
- free text: a histogram of lengths, and the vocabulary as truncated SHA-256 hashes of *frequent*
  words only (alphabetic, 3+ letters, in at least ``MIN_DOC_FREQ`` messages and 0.5 % of them).
  Names, e-mails and phone numbers are rare per message, so they are not kept; hashing means
  even a frequent word cannot be read back from the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.quality import DRIFT_ENGAGEMENTS
from charter_guardrails.core.policy import (
    ColumnRole,
    ColumnType,
    Dataset,
    DatasetRole,
    PersonalDataCategory,
    UseCasePolicy,
)
from charter_guardrails.core.results import CheckResult, Severity, Verdict
from charter_guardrails.core.settings import ConfigError, get_settings

if TYPE_CHECKING:
    import pandas as pd

PROFILE_VERSION = 1
MIN_CATEGORY_COUNT = 10
MIN_DOC_FREQ = 20
MIN_DOC_SHARE = 0.005
#: Integer columns with at most this many distinct training values are compared as categories.
MAX_DISCRETE_VALUES = 20
EPSILON = 1e-4
WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
OTHER = "__other__"
MISSING = "__missing__"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def profile_path(use_case: str, dataset_id: str) -> Path:
    return get_settings().home / "profiles" / use_case / f"{dataset_id}.json"


def drift_features(policy: UseCasePolicy, inference: Dataset | None = None) -> list[tuple[str, str]]:
    """(column, kind) compared for drift: features, sensitive attributes and free text that the
    inference data shares with the training data. kind is numeric, categorical or text."""
    training = policy.training_dataset
    inference = inference or (policy.datasets_with_role(DatasetRole.INFERENCE) or [training])[0]
    shared = {c.name for c in training.columns}
    out = []
    for column in inference.columns:
        if column.name not in shared or column.role not in (
            ColumnRole.FEATURE,
            ColumnRole.SENSITIVE_ATTRIBUTE,
            ColumnRole.FREE_TEXT,
        ):
            continue
        if column.role is ColumnRole.FREE_TEXT:
            kind = "text"
        elif column.type in (ColumnType.INTEGER, ColumnType.FLOAT):
            kind = "numeric"
        elif column.type in (ColumnType.DATE, ColumnType.DATETIME):
            continue  # time always moves on: a date is not a drifting feature
        else:
            kind = "categorical"
        out.append((column.name, kind))
    return out


# ---------------------------------------------------------------------------------------------
# the reference profile


def build_reference_profile(policy: UseCasePolicy, frame: pd.DataFrame, *, source: str | None = None) -> dict[str, Any]:
    """Profile the (typed) training frame. The result holds aggregates only (see the module doc)."""
    import numpy as np

    training = policy.training_dataset
    features: dict[str, Any] = {}
    for name, kind in drift_features(policy):
        if name not in frame.columns:
            continue
        column = training.column(name)
        personal = column.personal_data is not PersonalDataCategory.NONE
        series = frame[name]
        if kind == "numeric":
            values = series.dropna().astype("float64").to_numpy()
            if values.size and np.unique(values).size <= MAX_DISCRETE_VALUES and column.type is ColumnType.INTEGER:
                kind = "categorical"
            elif values.size:
                grid = np.quantile(values, np.linspace(0, 1, 201))
                edges = np.unique(np.quantile(values, np.linspace(0, 1, 11))[1:-1])
                features[name] = {
                    "kind": "numeric",
                    "n": int(values.size),
                    "quantiles": _round(grid),
                    "edges": _round(edges),
                    "shares": _shares(values, edges),
                }
                continue
        if kind == "categorical":
            counts = series.astype("string").fillna(MISSING).value_counts()
            kept: dict[str, int] = {}
            for value, count in counts.items():
                key = str(value) if (not personal or int(count) >= MIN_CATEGORY_COUNT) else OTHER
                kept[key] = kept.get(key, 0) + int(count)
            features[name] = {"kind": "categorical", "n": int(counts.sum()), "counts": kept, "pooled_rare": personal}
        elif kind == "text":
            texts = series.dropna().astype(str)
            lengths = np.array([len(words(t)) for t in texts], dtype="float64")
            edges = np.unique(np.quantile(lengths, np.linspace(0, 1, 11))[1:-1]) if lengths.size else np.array([])
            doc_freq: dict[str, int] = {}
            total_tokens = 0
            for text in texts:
                tokens = words(text)
                total_tokens += len(tokens)
                for token in set(tokens):
                    doc_freq[token] = doc_freq.get(token, 0) + 1
            floor = max(MIN_DOC_FREQ, math.ceil(MIN_DOC_SHARE * len(texts)))
            vocabulary = sorted(token_hash(t) for t, n in doc_freq.items() if n >= floor)
            vocab_set = set(vocabulary)
            in_vocab = sum(1 for text in texts for t in words(text) if token_hash(t) in vocab_set)
            features[name] = {
                "kind": "text",
                "n": int(len(texts)),
                "length_edges": _round(edges),
                "length_shares": _shares(lengths, edges),
                "vocabulary_sha256_16": vocabulary,
                "vocabulary_min_docs": floor,
                "reference_oov_share": round(1 - in_vocab / total_tokens, 4) if total_tokens else 0.0,
            }
    return {
        "version": PROFILE_VERSION,
        "use_case": policy.id,
        "dataset": training.id,
        "rows": int(len(frame)),
        "source": Path(source).name if source else None,
        "created_at": datetime.now(UTC).isoformat(),
        "features": features,
    }


def _round(values: Any) -> list[float]:
    return [float(f"{float(v):.6g}") for v in values]


def _shares(values: Any, edges: Any) -> list[float]:
    import numpy as np

    if not len(values):
        return []
    bins = np.searchsorted(np.asarray(edges, dtype="float64"), values, side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return [float(c) / float(len(values)) for c in counts]


def save_profile(profile: dict[str, Any], path: Path | None = None) -> Path:
    target = path or profile_path(profile["use_case"], profile["dataset"])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(profile, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(target)
    return target


def load_profile(path: Path) -> dict[str, Any]:
    try:
        profile = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no reference profile; profile the training data first (charter drift --reference TRAINING_FILE)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable reference profile ({exc})") from None
    if not isinstance(profile, dict) or profile.get("version") != PROFILE_VERSION or "features" not in profile:
        raise ConfigError(f"{path}: not a reference profile of version {PROFILE_VERSION}")
    return profile


# ---------------------------------------------------------------------------------------------
# the check


def psi(reference: list[float], batch: list[float]) -> float:
    """Population Stability Index; empty bins get a small epsilon so the log stays finite."""
    total = 0.0
    for r, b in zip(reference, batch, strict=True):
        r, b = max(r, EPSILON), max(b, EPSILON)
        total += (b - r) * math.log(b / r)
    return total


def _numeric(feature: dict[str, Any], values: Any) -> dict[str, Any]:
    import numpy as np
    from scipy.stats import kstwo

    values = np.sort(np.asarray(values, dtype="float64"))
    grid = np.asarray(feature["quantiles"], dtype="float64")
    probs = np.linspace(0, 1, grid.size)
    points = np.union1d(values, grid)
    ref_cdf = np.interp(points, grid, probs, left=0.0, right=1.0)
    batch_cdf = np.searchsorted(values, points, side="right") / values.size
    statistic = float(np.max(np.abs(batch_cdf - ref_cdf)))
    n, m = feature["n"], values.size
    effective = max(1, round(n * m / (n + m)))
    pvalue = float(kstwo.sf(statistic, effective))
    value_psi = psi(feature["shares"], _shares(values, feature["edges"]))
    return {"psi": round(value_psi, 4), "ks_statistic": round(statistic, 4), "ks_pvalue": pvalue, "batch_n": int(m)}


def _categorical(feature: dict[str, Any], series: Any) -> dict[str, Any]:
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency

    reference = feature["counts"]
    batch: dict[str, int] = {}
    for value, count in series.astype("string").fillna(MISSING).value_counts().items():
        key = str(value) if str(value) in reference or not feature.get("pooled_rare") else OTHER
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


def _text(feature: dict[str, Any], series: Any) -> dict[str, Any]:
    texts = series.dropna().astype(str)
    lengths = [float(len(words(t))) for t in texts]
    vocabulary = set(feature["vocabulary_sha256_16"])
    total = oov = 0
    for text in texts:
        for token in words(text):
            total += 1
            oov += token_hash(token) not in vocabulary
    return {
        "length_psi": round(psi(feature["length_shares"], _shares(lengths, feature["length_edges"])), 4)
        if lengths
        else 0.0,
        "oov_share": round(oov / total, 4) if total else 0.0,
        "reference_oov_share": feature.get("reference_oov_share"),
        "batch_n": len(texts),
    }


def check_drift(
    policy: UseCasePolicy,
    frame: pd.DataFrame,
    profile: dict[str, Any],
    *,
    dataset: str | None = None,
    profile_source: str | None = None,
) -> CheckResult:
    """Compare a typed inference batch with the stored training profile."""
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
    for name, feature in profile["features"].items():
        if name not in frame.columns:
            missing.append(name)
            continue
        series = frame[name]
        reasons: list[str] = []
        if feature["kind"] == "numeric":
            values = series.dropna().astype("float64").to_numpy()
            if not values.size:
                missing.append(name)
                continue
            stats = _numeric(feature, values)
            if stats["psi"] > thresholds.psi_max and stats["ks_pvalue"] < thresholds.ks_pvalue_min:
                reasons.append(
                    f"PSI {stats['psi']:.3f} > {thresholds.psi_max} and KS p={stats['ks_pvalue']:.2g} < {thresholds.ks_pvalue_min}"
                )
        elif feature["kind"] == "categorical":
            stats = _categorical(feature, series)
            if stats["js_distance"] > thresholds.js_max and stats["chi2_pvalue"] < thresholds.chi2_pvalue_min:
                reasons.append(
                    f"Jensen-Shannon {stats['js_distance']:.3f} > {thresholds.js_max} and chi-square p={stats['chi2_pvalue']:.2g} "
                    f"< {thresholds.chi2_pvalue_min}"
                )
        else:
            stats = _text(feature, series)
            if stats["length_psi"] > thresholds.text_length_psi_max:
                reasons.append(f"length PSI {stats['length_psi']:.3f} > {thresholds.text_length_psi_max}")
            if stats["oov_share"] > thresholds.vocabulary_oov_max:
                reasons.append(
                    f"{stats['oov_share']:.0%} of words unseen in training > {thresholds.vocabulary_oov_max:.0%}"
                )
        stats.update({"kind": feature["kind"], "drifted": bool(reasons), "reasons": reasons})
        per_feature[name] = stats
        if reasons:
            drifted.append(name)
    failing = len(drifted) >= thresholds.max_drifted_features or bool(missing)
    verdict = Verdict.FAIL if failing else (Verdict.WARN if drifted else Verdict.PASS)
    detail = "; ".join(f"{n}: {', '.join(per_feature[n]['reasons'])}" for n in drifted)
    if missing:
        detail = (detail + "; " if detail else "") + f"feature(s) absent or empty in the batch: {missing}"
    summary = (
        f"{len(drifted)} of {len(per_feature)} feature(s) drifted from the training reference"
        + (f" — {detail}" if detail else "")
        if failing or drifted
        else f"no drift on {len(per_feature)} feature(s) against the training reference"
    )
    return CheckResult(
        check="drift",
        verdict=verdict,
        severity=Severity.ERROR if failing else (Severity.WARNING if drifted else Severity.INFO),
        engagements=DRIFT_ENGAGEMENTS,
        dataset=ds.id,
        summary=summary,
        metrics={
            "features": len(per_feature),
            "drifted_features": len(drifted),
            "batch_rows": int(len(frame)),
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
