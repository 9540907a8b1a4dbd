"""What a personal-data scan reports: options, per-column findings, and the hits they are built from.

Results carry counts, shares, scores and masked examples only, never a raw value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from charter_guardrails.core.policy_models import Dataset
    from charter_guardrails.core.policy_privacy import PrivacyPolicy

ScanMode = Literal["sampling", "exhaustive"]


def sample_size(rate: float, confidence: float) -> int:
    """Rows to draw so that a share ``rate`` of matching rows is hit at least once with probability ``confidence``."""
    return math.ceil(math.log(1 - confidence) / math.log(1 - rate))


def miss_probability(rate: float, n: int) -> float:
    """Upper bound of the chance that ``n`` random rows (drawn without replacement) miss a share ``rate``."""
    return (1 - rate) ** n


EXHAUSTIVE_GUARANTEE = "exhaustive: every distinct value of every column was analysed"


def sampling_guarantee(options: ScanOptions, total: int, how: str = "") -> str:
    """What a sampling scan of ``total`` rows guarantees; ``how`` says how the sample was drawn, when it matters.

    It holds for a simple random sample of rows (uniform, without replacement): what :meth:`DataFrame.sample`,
    the streaming scan's reservoir and its draw of Parquet row positions give."""
    n = sample_size(options.min_detectable_rate, options.confidence)
    if total <= n:
        return (
            f"sampling asked, but the table has {total} rows, no more than the sample size {n}: every row was scanned"
        )
    return (
        f"sampling: {n} of {total} rows drawn at random{f' ({how})' if how else ''}; "
        f"a column where at least {options.min_detectable_rate:.2%} "
        f"of the rows hold an entity is found with probability at least "
        f"{1 - miss_probability(options.min_detectable_rate, n):.6f} (asked: {options.confidence})"
    )


@dataclass(frozen=True)
class ScanOptions:
    """How to scan. :meth:`from_policy` reads the policy's ``privacy`` section."""

    mode: ScanMode = "sampling"
    min_score: float = 0.5
    min_detectable_rate: float = 0.01
    confidence: float = 0.99
    #: Columns declared free text (NER whatever their values look like).
    free_text_columns: frozenset[str] = frozenset()
    seed: int = 20260101
    #: spaCy processes for NER; ``None``: all cores for large inputs, one for small ones.
    n_process: int | None = None
    max_examples: int = 3
    #: Countries whose national identifiers are looked for too (``privacy.national_identifiers``).
    national_identifiers: frozenset[str] = frozenset()
    #: Region of phone numbers written without a country code (``privacy.phone_region``).
    phone_region: str = "FR"
    #: A file with more rows is scanned in partitions of this many rows (``privacy.partition_rows``); ``None``:
    #: whole, whatever its length (a frame, or a partition itself).
    partition_rows: int | None = None

    @classmethod
    def from_policy(
        cls, privacy: PrivacyPolicy, dataset: Dataset | None = None, *, exhaustive: bool | None = None
    ) -> ScanOptions:
        from charter_guardrails.core.policy_models import ColumnRole

        free = frozenset(c.name for c in dataset.columns if c.role is ColumnRole.FREE_TEXT) if dataset else frozenset()
        mode: ScanMode = (
            "exhaustive" if exhaustive or (exhaustive is None and privacy.scan_mode == "exhaustive") else "sampling"
        )
        return cls(
            mode=mode,
            min_score=privacy.min_score,
            min_detectable_rate=privacy.min_detectable_rate,
            confidence=privacy.confidence,
            free_text_columns=free,
            national_identifiers=frozenset(privacy.national_identifiers),
            phone_region=privacy.phone_region,
            partition_rows=privacy.rows_per_partition,
        )


@dataclass(frozen=True)
class Window:
    """Rows ``[start, stop)`` of a dataset of ``total`` rows: partition ``index`` of ``count``.

    In sampling mode a partition draws its proportional share of the sample, ``ceil(n * rows / total)`` rows,
    with its own seed: the partitions' draws make a stratified sample of at least ``n`` rows, the same whether
    the partitions are scanned in one process or one per worker (see :mod:`.partitioned` for its guarantee).
    """

    index: int
    count: int
    start: int
    stop: int
    total: int

    @property
    def rows(self) -> int:
        return self.stop - self.start

    def sample_size(self, options: ScanOptions) -> int:
        n = sample_size(options.min_detectable_rate, options.confidence)
        return min(self.rows, math.ceil(n * self.rows / self.total)) if self.total else 0

    def seed(self, options: ScanOptions) -> int:
        """The partition's seed, derived from the scan's seed and its index (numpy's ``SeedSequence``)."""
        import numpy as np

        return int(np.random.SeedSequence([options.seed, self.index]).generate_state(1)[0])

    def to_json_dict(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count, "start": self.start, "stop": self.stop, "total": self.total}


@dataclass
class EntityFinding:
    entity_type: str
    #: Scanned rows holding the entity.
    count: int
    #: ``count`` / scanned rows.
    share: float
    mean_score: float
    max_score: float
    masked_examples: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "entity_type": self.entity_type,
            "count": self.count,
            "share": round(self.share, 6),
            "mean_score": round(self.mean_score, 4),
            "max_score": round(self.max_score, 4),
            "masked_examples": list(self.masked_examples),
        }


@dataclass
class ColumnScan:
    name: str
    #: structured | name_like | free_text | empty
    kind: str
    rows: int
    non_null: int
    distinct: int
    findings: list[EntityFinding] = field(default_factory=list)
    #: Look-alikes below the threshold: a failed checksum, or a weak format without context.
    suspects: list[EntityFinding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def entity_types(self) -> set[str]:
        return {f.entity_type for f in self.findings}

    def finding(self, entity_type: str) -> EntityFinding | None:
        return next((f for f in self.findings if f.entity_type == entity_type), None)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "non_null": self.non_null,
            "distinct": self.distinct,
            "findings": [f.to_json_dict() for f in self.findings],
            "suspects": [f.to_json_dict() for f in self.suspects],
            "notes": list(self.notes),
        }


@dataclass
class ScanReport:
    source: str
    mode: ScanMode
    rows: int
    scanned_rows: int
    min_score: float
    columns: list[ColumnScan]
    guarantee: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    def column(self, name: str) -> ColumnScan:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def columns_with_pii(self) -> list[ColumnScan]:
        return [c for c in self.columns if c.findings]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "mode": self.mode,
            "rows": self.rows,
            "scanned_rows": self.scanned_rows,
            "min_score": self.min_score,
            "guarantee": self.guarantee,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
            "columns": [c.to_json_dict() for c in self.columns],
        }


@dataclass(frozen=True)
class Hit:
    """One detected entity in one value: offsets into the value, never the text itself."""

    entity_type: str
    start: int
    end: int
    score: float
    suspect: bool = False
