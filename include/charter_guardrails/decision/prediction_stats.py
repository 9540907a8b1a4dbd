"""The distribution of a batch's predictions and its drift from the previous batch: aggregates only.

A classifier's distribution is its class counts and shares, with a 10-bin histogram of the positive class's
probability when the model gives one; a regressor's is a 10-bin histogram of the predicted values on edges
inherited from the previous batch (the first batch sets them: ten equal bins from its smallest to its largest
prediction; a later value outside them counts in the outer bin). The drift is the Jensen-Shannon distance
(base 2, from 0 for the same distribution to 1 for disjoint ones) between two batches' class shares or bin
shares, so it compares batches of any size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

BINS = 10
#: The edges of a probability histogram: ten bins of 0.1 from 0 to 1.
PROBABILITY_EDGES = [round(i / BINS, 1) for i in range(BINS + 1)]


def histogram(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts of ``values`` in the bins of ``edges``; values outside them count in the outer bins."""
    import numpy as np

    clipped = np.clip(np.asarray(values, dtype=float), edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=np.asarray(edges, dtype=float))
    return [int(c) for c in counts]


def class_distribution(
    predictions: Sequence[str], probabilities: Sequence[float] | None, positive: str | None
) -> dict[str, Any]:
    """Class counts and shares (and the positive class's probability histogram) of a classifier's predictions."""
    counts: dict[str, int] = {}
    for label in predictions:
        counts[str(label)] = counts.get(str(label), 0) + 1
    total = len(predictions)
    out: dict[str, Any] = {
        "kind": "classes",
        "counts": dict(sorted(counts.items())),
        "shares": {k: round(v / total, 6) for k, v in sorted(counts.items())} if total else {},
    }
    if probabilities is not None and positive is not None:
        out["probability"] = {
            "class": positive,
            "edges": PROBABILITY_EDGES,
            "counts": histogram(probabilities, PROBABILITY_EDGES) if total else [0] * BINS,
        }
    return out


def value_distribution(values: Sequence[float], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """A regressor's predictions as a 10-bin histogram, on the previous batch's edges when it has some."""
    import numpy as np

    edges: list[float]
    if previous and previous.get("kind") == "values" and len(previous.get("edges") or []) == BINS + 1:
        edges = [float(e) for e in previous["edges"]]
    elif len(values):
        low, high = float(np.min(values)), float(np.max(values))
        low, high = (low - 0.5, high + 0.5) if low == high else (low, high)
        edges = [float(e) for e in np.linspace(low, high, BINS + 1)]
    else:
        return {"kind": "values", "edges": [], "counts": []}
    return {"kind": "values", "edges": edges, "counts": histogram(values, edges) if len(values) else [0] * BINS}


def _shares(distribution: Mapping[str, Any]) -> dict[str, float] | None:
    if distribution.get("kind") == "classes":
        counts = {str(k): int(v) for k, v in (distribution.get("counts") or {}).items()}
    elif distribution.get("kind") == "values":
        counts = {str(i): int(v) for i, v in enumerate(distribution.get("counts") or [])}
    else:
        return None
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else None


def drift(previous: Mapping[str, Any], current: Mapping[str, Any]) -> float | None:
    """Jensen-Shannon distance (base 2) between two distributions; ``None`` when they cannot be compared
    (another kind, other bin edges, an empty batch)."""
    if previous.get("kind") != current.get("kind"):
        return None
    if current.get("kind") == "values" and previous.get("edges") != current.get("edges"):
        return None
    before, after = _shares(previous), _shares(current)
    if before is None or after is None:
        return None
    from scipy.spatial.distance import jensenshannon

    keys = sorted(set(before) | set(after))
    distance = float(jensenshannon([before.get(k, 0.0) for k in keys], [after.get(k, 0.0) for k in keys], base=2))
    return 0.0 if math.isnan(distance) else round(max(0.0, min(1.0, distance)), 6)  # NaN: rounding below zero


def total(distribution: Mapping[str, Any]) -> int:
    """How many predictions a distribution counts."""
    counts = distribution.get("counts") or {}
    return int(sum(counts.values()) if isinstance(counts, Mapping) else sum(counts))


__all__ = ["BINS", "PROBABILITY_EDGES", "class_distribution", "drift", "histogram", "total", "value_distribution"]
