"""The column scanner: which personal data each column of a table holds, fast and without leaking it.

Speed comes from design, not from skipping data:

- each column is reduced to its **distinct values** with their row counts, and every value is
  analysed once;
- **structured** columns (codes, numbers, identifiers) go through the regex + checksum
  recognizers only; a vectorised pre-filter (pandas/Arrow ``str.contains``) discards values
  that cannot match any of them before the Python regexes run;
- **NER** (spaCy, names and places) runs only on free-text columns (declared ``free_text`` in
  the policy, or whose values are mostly several words) and on name-like columns (many distinct
  values of two or three words), with ``nlp.pipe`` batches in worker processes on up to all cores;
- the **column name** is context: ``siret_fournisseur`` raises the score of a SIRET match;
- in **sampling** mode, ``n = ceil(ln(1 - confidence) / ln(1 - rate))`` rows are drawn at random
  (the policy's ``min_detectable_rate`` and ``confidence``): a column where at least ``rate`` of the rows hold an entity is
  then found with probability ``confidence`` or more (rate 1 %, confidence 99 %: n = 459).
  **Exhaustive** mode analyses every distinct value.

Results carry counts, shares, scores and masked examples only. Logs carry counts and column
names only.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from charter_guardrails.privacy.masking import mask

if TYPE_CHECKING:
    import pandas as pd

    from charter_guardrails.policy import Dataset, PrivacyPolicy

log = logging.getLogger(__name__)

ScanMode = Literal["sampling", "exhaustive"]

#: Score of a look-alike that fails its checksum: reported as a suspect, never as the entity.
SUSPECT_SCORE = 0.1
#: Presidio's context enhancement factor: a context word near a match (or naming the column) adds it.
CONTEXT_BOOST = 0.35
#: Characters before a match searched for a context word.
CONTEXT_WINDOW = 48
#: spaCy processes long cells in pieces of this many characters.
NER_CHUNK_CHARS = 100_000
#: Texts per ``nlp.pipe`` batch, per chunk handed to a worker, and from how many texts workers are worth it.
NER_BATCH = 512
NER_CHUNK_TEXTS = 4000
PARALLEL_NER_FROM = 20_000
#: A column whose values have this many words (median) is free text.
FREE_TEXT_MIN_WORDS = 4
#: Values that could match any recognizer; everything else skips the Python regexes. RE2-compatible.
PREFILTER = (r"\d\d|@|[0-9A-Z]{7}|[A-Z]{2}[- ]\d{3}"
             r"|\d(?: ?(?:bis|ter|[A-D]))?,? (?i:rue|av|bd|bo|ch|al|im|pl|co|qu|ro|tr|sq|pa|es|mo|lo|r[eé]|vo|se|fa)")
_PREFILTER = re.compile(PREFILTER)
#: Below this many distinct values, plain Python beats pandas/Arrow's per-call overhead.
VECTORISE_FROM = 2000
PROGRESS_EVERY_SECONDS = 10.0
#: Words of at least two letters: "06 12 34 56 78" has none, "rue de la Paix" four.
_WORDS = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
_NAME_LIKE = re.compile(r"^[^\W\d_][^\W\d_'’ .\-]*(?:[ '’.\-]+[^\W\d_]+){1,3}\.?$", re.UNICODE)


def sample_size(rate: float, confidence: float) -> int:
    """Rows to draw so that a share ``rate`` of matching rows is hit at least once with probability ``confidence``."""
    return math.ceil(math.log(1 - confidence) / math.log(1 - rate))


def miss_probability(rate: float, n: int) -> float:
    """Upper bound of the chance that ``n`` random rows (drawn without replacement) miss a share ``rate``."""
    return (1 - rate) ** n


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

    @classmethod
    def from_policy(cls, privacy: PrivacyPolicy, dataset: Dataset | None = None, *, exhaustive: bool | None = None) -> ScanOptions:
        from charter_guardrails.policy import ColumnRole

        free = frozenset(c.name for c in dataset.columns if c.role is ColumnRole.FREE_TEXT) if dataset else frozenset()
        mode: ScanMode = "exhaustive" if exhaustive or (exhaustive is None and privacy.scan_mode == "exhaustive") else "sampling"
        return cls(mode=mode, min_score=privacy.min_score, min_detectable_rate=privacy.min_detectable_rate,
                   confidence=privacy.confidence, free_text_columns=free)


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
        return {"entity_type": self.entity_type, "count": self.count, "share": round(self.share, 6),
                "mean_score": round(self.mean_score, 4), "max_score": round(self.max_score, 4),
                "masked_examples": list(self.masked_examples)}


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
        return {"name": self.name, "kind": self.kind, "rows": self.rows, "non_null": self.non_null, "distinct": self.distinct,
                "findings": [f.to_json_dict() for f in self.findings], "suspects": [f.to_json_dict() for f in self.suspects],
                "notes": list(self.notes)}


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
        return {"source": self.source, "mode": self.mode, "rows": self.rows, "scanned_rows": self.scanned_rows,
                "min_score": self.min_score, "guarantee": self.guarantee, "seconds": round(self.seconds, 3),
                "notes": list(self.notes), "columns": [c.to_json_dict() for c in self.columns]}


@dataclass(frozen=True)
class Hit:
    """One detected entity in one value: offsets into the value, never the text itself."""

    entity_type: str
    start: int
    end: int
    score: float
    suspect: bool = False


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[_\-./]+", " ", text)


class Detector:
    """The French pattern recognizers compiled for bulk use, and the NER pipeline on demand.

    It uses the recognizers' own patterns, scores, context words and stdnum checksums
    (``is_valid``), so the scanner and Presidio's analyzer agree on what is an entity.
    """

    def __init__(self) -> None:
        from charter_guardrails.privacy.analyzer import recognizer_instances

        self.recognizers = recognizer_instances()
        self._patterns: list[tuple[Any, re.Pattern[str], float]] = []
        self._context: dict[str, re.Pattern[str]] = {}
        for rec in self.recognizers:
            flags = getattr(rec, "global_regex_flags", None)
            flags = re.DOTALL | re.MULTILINE | re.IGNORECASE if flags is None else flags
            for pattern in rec.patterns:
                self._patterns.append((rec, re.compile(pattern.regex, flags), pattern.score))
            words = sorted({_normalise(w) for w in rec.context}, key=len, reverse=True)
            entity = rec.supported_entities[0]
            self._context[entity] = re.compile(r"(?<![a-z])(?:" + "|".join(re.escape(w) for w in words) + r")")
        self._strong = {rec.supported_entities[0]: bool(getattr(rec, "STRONG_CHECKSUM", False)) for rec in self.recognizers}

    def context_entities(self, column_name: str) -> set[str]:
        """Entities whose context words appear in a column name (``telephone_usager`` → FR_PHONE)."""
        name = _normalise(column_name)
        return {entity for entity, pattern in self._context.items() if pattern.search(name)}

    def pattern_hits(self, text: str, boosted: frozenset[str] | set[str] = frozenset()) -> list[Hit]:
        """Regex + checksum hits in one value. ``boosted``: entities with context in the column name."""
        hits: list[Hit] = []
        for rec, compiled, base in self._patterns:
            entity = rec.supported_entities[0]
            for match in compiled.finditer(text):
                matched = match.group(0)
                valid = rec.is_valid(matched)
                if valid is False:
                    hits.append(Hit(entity, match.start(), match.end(), SUSPECT_SCORE, True))
                    continue
                score = 1.0 if (valid and self._strong[entity]) else base
                if score < 1.0 and (entity in boosted or self._context[entity].search(
                        _normalise(text[max(0, match.start() - CONTEXT_WINDOW):match.start()]))):
                    score = min(1.0, score + CONTEXT_BOOST)
                hits.append(Hit(entity, match.start(), match.end(), score))
        return _resolve_overlaps(hits)

    def ner_hits(self, texts: Sequence[str], *, n_process: int | None = None, label: str = "") -> list[list[Hit]]:
        """PERSON and LOCATION spans for each text, with spaCy's ``nlp.pipe`` in batches."""
        from charter_guardrails.privacy.analyzer import NER_ENTITY_MAPPING, NER_SCORE, get_ner_pipeline

        nlp = get_ner_pipeline()
        pieces: list[str] = []
        owners: list[tuple[int, int]] = []  # (text index, offset of the piece in the text)
        for i, text in enumerate(texts):
            for offset in range(0, max(len(text), 1), NER_CHUNK_CHARS):
                pieces.append(text[offset:offset + NER_CHUNK_CHARS])
                owners.append((i, offset))
        if n_process is None:
            n_process = max(1, min(os.cpu_count() or 1, 4)) if len(pieces) >= PARALLEL_NER_FROM else 1
        out: list[list[Hit]] = [[] for _ in texts]
        started = last = time.monotonic()
        done = 0
        for chunk_start, spans in _ner_spans(nlp, pieces, n_process):
            for k, piece_spans in enumerate(spans, start=chunk_start):
                index, offset = owners[k]
                for label_, start, end in piece_spans:
                    entity = NER_ENTITY_MAPPING.get(label_)
                    if entity:
                        out[index].append(Hit(entity, start + offset, end + offset, NER_SCORE))
            done += len(spans)
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_SECONDS:
                last = now
                log.info("personal data scan: NER %s%d/%d texts (%.0f/s)", f"{label}: " if label else "", done, len(pieces),
                         done / (now - started))
        return out


def _spans_of(nlp: Any, texts: list[str]) -> list[list[tuple[str, int, int]]]:
    return [[(e.label_, e.start_char, e.end_char) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=NER_BATCH)]


def _ner_worker(texts: list[str]) -> list[list[tuple[str, int, int]]]:
    from charter_guardrails.privacy.analyzer import get_ner_pipeline

    return _spans_of(get_ner_pipeline(), texts)  # inherited from the parent by fork: no reload


def _ner_spans(nlp: Any, pieces: list[str], n_process: int) -> Iterable[tuple[int, list[list[tuple[str, int, int]]]]]:
    """(offset, entity spans) per chunk of texts, in order.

    With several processes, workers return only (label, start, end) tuples: spaCy's own
    ``n_process`` ships whole ``Doc`` objects back, which doubled the CPU cost per text and was
    slower than one process on a busy 2-core machine.
    """
    chunks = [(i, pieces[i:i + NER_CHUNK_TEXTS]) for i in range(0, len(pieces), NER_CHUNK_TEXTS)]
    if n_process <= 1 or len(chunks) < 2:
        for start, chunk in chunks:
            yield start, _spans_of(nlp, chunk)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=n_process, mp_context=multiprocessing.get_context("fork")) as pool:
        for (start, _), spans in zip(chunks, pool.map(_ner_worker, [c for _, c in chunks]), strict=True):
            yield start, spans


def _resolve_overlaps(hits: list[Hit]) -> list[Hit]:
    """Keep the best hit where several overlap: real matches before suspects, then the higher score."""
    if len(hits) < 2:
        return hits
    kept: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (h.suspect, -h.score, h.start)):
        if all(hit.end <= k.start or hit.start >= k.end for k in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def merge_ner(pattern: list[Hit], ner: list[Hit]) -> list[Hit]:
    """Add NER spans that do not overlap a pattern match (a checked identifier beats a name guess)."""
    solid = [h for h in pattern if not h.suspect]
    extra = [h for h in ner if all(h.end <= p.start or h.start >= p.end for p in solid)]
    return sorted(pattern + extra, key=lambda h: h.start)



_DETECTOR: Detector | None = None


def get_detector() -> Detector:
    """The process-wide :class:`Detector` (its regexes compiled once)."""
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = Detector()
    return _DETECTOR


def column_kind(name: str, values: Sequence[str], free_text_columns: Iterable[str] = ()) -> str:
    """``free_text``, ``name_like`` (NER as well) or ``structured`` (regex and checksums only)."""
    if name in set(free_text_columns):
        return "free_text"
    probe = [v.strip() for v in values[:300]]
    words = sorted(len(_WORDS.findall(v)) for v in probe)
    if words and words[len(words) // 2] >= FREE_TEXT_MIN_WORDS:
        return "free_text"
    # Names ("Jean Dupont") are short but need NER; categories ("tri selectif") have few distinct values.
    if len(values) >= 20 and sum(bool(_NAME_LIKE.match(v)) for v in probe) >= 0.6 * len(probe):
        return "name_like"
    return "structured"


def detect_values(values: Sequence[str], kind: str, column_name: str = "", *, n_process: int | None = None) -> list[list[Hit]]:
    """Hits for each distinct value of one column (offsets into the value)."""
    import numpy as np
    import pandas as pd

    detector = get_detector()
    boosted = detector.context_entities(column_name)
    out: list[list[Hit]] = [[] for _ in values]
    if not values:
        return out
    if len(values) >= VECTORISE_FROM:
        # Arrow's RE2 runs the pre-filter over all values in C++; the Python regexes see candidates only.
        mask = pd.Series(values, dtype="string[pyarrow]").str.contains(PREFILTER, regex=True).fillna(False).to_numpy(dtype=bool)
        candidates = [int(i) for i in np.flatnonzero(mask)]
    else:  # building an Arrow array costs more than it saves on a few values (wide tables)
        candidates = [i for i, v in enumerate(values) if _PREFILTER.search(v)]
    for i in candidates:
        out[i] = detector.pattern_hits(values[i], boosted)
    if kind in ("free_text", "name_like"):
        ner = detector.ner_hits(values, n_process=n_process, label=column_name)
        out = [merge_ner(p, n) for p, n in zip(out, ner, strict=True)]
    return out


def distinct_values(series: pd.Series) -> tuple[list[str], list[int], int]:
    """(distinct non-empty values as text, their row counts, non-null rows), most frequent first."""
    import pandas as pd

    if len(series) < VECTORISE_FROM:
        tally: dict[str, int] = {}
        for v in series.tolist():
            if v is None or (not isinstance(v, (str, bytes)) and pd.isna(v)):
                continue
            text = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            if text.strip():
                tally[text] = tally.get(text, 0) + 1
        ranked = sorted(tally.items(), key=lambda kv: -kv[1])
        return [k for k, _ in ranked], [c for _, c in ranked], sum(tally.values())
    present = series.dropna()
    if not (pd.api.types.is_string_dtype(present) or present.dtype == object):
        present = present.astype(str)
    else:
        present = present.map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
    present = present[present.str.strip().str.len() > 0]
    counts = present.value_counts(sort=True)
    return [str(v) for v in counts.index], [int(c) for c in counts.to_numpy()], int(len(present))


class _Tally:
    __slots__ = ("examples", "max", "rows", "weighted")

    def __init__(self) -> None:
        self.rows = 0
        self.weighted = 0.0
        self.max = 0.0
        self.examples: list[str] = []

    def add(self, rows: int, score: float, example: str, limit: int) -> None:
        self.rows += rows
        self.weighted += rows * score
        self.max = max(self.max, score)
        if len(self.examples) < limit and example not in self.examples:
            self.examples.append(example)

    def finding(self, entity: str, scanned: int) -> EntityFinding:
        return EntityFinding(entity, self.rows, self.rows / scanned if scanned else 0.0, self.weighted / self.rows if self.rows else 0.0,
                             self.max, self.examples)


def scan_column(name: str, series: pd.Series, options: ScanOptions) -> ColumnScan:
    """Scan one column (the rows given: all of them, or the sample)."""
    rows = len(series)
    values, counts, non_null = distinct_values(series)
    if not values:
        return ColumnScan(name, "empty", rows, 0, 0, notes=["empty or all-null column"])
    kind = column_kind(name, values, options.free_text_columns)
    hits = detect_values(values, kind, name, n_process=options.n_process)
    found: dict[str, _Tally] = {}
    suspect: dict[str, _Tally] = {}
    for value, count, value_hits in zip(values, counts, hits, strict=True):
        best: dict[str, Hit] = {}
        low: dict[str, Hit] = {}
        for hit in value_hits:
            target = low if (hit.suspect or hit.score < options.min_score) else best
            if hit.entity_type not in target or hit.score > target[hit.entity_type].score:
                target[hit.entity_type] = hit
        for entity, hit in best.items():
            found.setdefault(entity, _Tally()).add(count, hit.score, mask(value[hit.start:hit.end], entity), options.max_examples)
        for entity, hit in low.items():
            if entity not in best:
                suspect.setdefault(entity, _Tally()).add(count, hit.score, mask(value[hit.start:hit.end], entity), options.max_examples)
    notes = []
    longest = max(len(v) for v in values)
    if longest > 1_000_000:
        notes.append(f"cells up to {longest} characters: NER read them in {NER_CHUNK_CHARS}-character pieces")
    by_rows = lambda f: (-f.count, f.entity_type)  # noqa: E731
    return ColumnScan(name, kind, rows, non_null, len(values),
                      findings=sorted((t.finding(e, rows) for e, t in found.items()), key=by_rows),
                      suspects=sorted((t.finding(e, rows) for e, t in suspect.items()), key=by_rows), notes=notes)


def scan_frame(frame: pd.DataFrame, options: ScanOptions | None = None, *, source: str = "dataframe") -> ScanReport:
    """Scan every column of ``frame``; in sampling mode on a random sample of rows."""
    options = options or ScanOptions()
    started = time.monotonic()
    total = len(frame)
    scanned = frame
    if options.mode == "sampling":
        n = sample_size(options.min_detectable_rate, options.confidence)
        if total > n:
            scanned = frame.sample(n=n, random_state=options.seed)
            guarantee = (f"sampling: {n} of {total} rows drawn at random; a column where at least {options.min_detectable_rate:.2%} "
                         f"of the rows hold an entity is found with probability at least "
                         f"{1 - miss_probability(options.min_detectable_rate, n):.6f} (asked: {options.confidence})")
        else:
            guarantee = f"sampling asked, but the table has {total} rows, no more than the sample size {n}: every row was scanned"
    else:
        guarantee = "exhaustive: every distinct value of every column was analysed"
    columns: list[ColumnScan] = []
    last = time.monotonic()
    width = scanned.shape[1]
    for k in range(width):
        name = str(scanned.columns[k])
        columns.append(scan_column(name, scanned.iloc[:, k], options))
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_SECONDS:
            last = now
            log.info("personal data scan of %s: %d/%d columns, %d rows each, %.0f s", source, k + 1, width, len(scanned), now - started)
    seconds = time.monotonic() - started
    log.info("personal data scan of %s (%s): %d columns, %d of %d rows, %d columns with personal data, %.1f s", source, options.mode,
             width, len(scanned), total, sum(1 for c in columns if c.findings), seconds)
    return ScanReport(source=source, mode=options.mode, rows=total, scanned_rows=len(scanned), min_score=options.min_score,
                      columns=columns, guarantee=guarantee, seconds=seconds)
