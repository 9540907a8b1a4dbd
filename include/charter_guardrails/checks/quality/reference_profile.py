"""The reference profile of the training data, against which :mod:`.drift` compares inference batches.

It is computed once, when the training data is validated, and stored as JSON
(``$CHARTER_HOME/profiles/<use_case>/<dataset>.json``).

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

from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import (
    Column,
    ColumnRole,
    ColumnType,
    Dataset,
    DatasetRole,
    PersonalDataCategory,
)
from charter_guardrails.core.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd

PROFILE_VERSION = 1
MIN_CATEGORY_COUNT = 10
MIN_DOC_FREQ = 20
MIN_DOC_SHARE = 0.005
#: Integer columns with at most this many distinct training values are compared as categories.
MAX_DISCRETE_VALUES = 20
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


def build_reference_profile(policy: UseCasePolicy, frame: pd.DataFrame, *, source: str | None = None) -> dict[str, Any]:
    """Profile the (typed) training frame. The result holds aggregates only (see the module doc)."""
    training = policy.training_dataset
    features: dict[str, Any] = {}
    for name, kind in drift_features(policy):
        if name not in frame.columns:
            continue
        feature = _profile_feature(training.column(name), kind, frame[name])
        if feature is not None:
            features[name] = feature
    return {
        "version": PROFILE_VERSION,
        "use_case": policy.id,
        "dataset": training.id,
        "rows": len(frame),
        "source": Path(source).name if source else None,
        "created_at": datetime.now(UTC).isoformat(),
        "features": features,
    }


def _profile_feature(column: Column, kind: str, series: Any) -> dict[str, Any] | None:
    """One feature's profile, or None when a numeric column has no value to profile."""
    import numpy as np

    if kind == "numeric":
        values = series.dropna().astype("float64").to_numpy()
        if values.size and np.unique(values).size <= MAX_DISCRETE_VALUES and column.type is ColumnType.INTEGER:
            kind = "categorical"
        elif values.size:
            return _profile_numeric(values)
    if kind == "categorical":
        return _profile_categorical(series, personal=column.personal_data is not PersonalDataCategory.NONE)
    if kind == "text":
        return _profile_text(series)
    return None


def _profile_numeric(values: Any) -> dict[str, Any]:
    import numpy as np

    grid = np.quantile(values, np.linspace(0, 1, 201))
    edges = np.unique(np.quantile(values, np.linspace(0, 1, 11))[1:-1])
    return {
        "kind": "numeric",
        "n": int(values.size),
        "quantiles": _round(grid),
        "edges": _round(edges),
        "shares": bin_shares(values, edges),
    }


def _profile_categorical(series: Any, *, personal: bool) -> dict[str, Any]:
    counts = series.astype("string").fillna(MISSING).value_counts()
    kept: dict[str, int] = {}
    for value, count in counts.items():
        key = str(value) if (not personal or int(count) >= MIN_CATEGORY_COUNT) else OTHER
        kept[key] = kept.get(key, 0) + int(count)
    return {"kind": "categorical", "n": int(counts.sum()), "counts": kept, "pooled_rare": personal}


def _profile_text(series: Any) -> dict[str, Any]:
    import numpy as np

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
    return {
        "kind": "text",
        "n": len(texts),
        "length_edges": _round(edges),
        "length_shares": bin_shares(lengths, edges),
        "vocabulary_sha256_16": vocabulary,
        "vocabulary_min_docs": floor,
        "reference_oov_share": round(1 - in_vocab / total_tokens, 4) if total_tokens else 0.0,
    }


def _round(values: Any) -> list[float]:
    return [float(f"{float(v):.6g}") for v in values]


def bin_shares(values: Any, edges: Any) -> list[float]:
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
