"""The column scanner: which personal data each column of a table holds, fast and without leaking it.

Speed comes from design, not from skipping data:

- each column is reduced to its **distinct values** with their row counts, and every value is
  analysed once;
- **structured** columns (codes, numbers, identifiers) go through the regex + checksum
  recognizers only. A vectorised pass plans the work: each recognizer pattern has an RE2
  over-approximation (:func:`re2_superset`) that Arrow runs over the whole column in C++, so a
  value goes only through the Python patterns and checksums that can match it (a NIR column
  through the NIR pattern, not all sixteen), and a value no pattern can match through none;
- **NER** (spaCy, names and places) runs only on free-text columns (declared ``free_text`` in
  the policy, or whose values are mostly several words) and on name-like columns (many distinct
  values of two or three words), with ``nlp.pipe`` batches in one worker process per core (up to
  4), each of which also runs the pattern pass on its chunk. The NER pipeline computes each
  distinct token window of a batch once, with OpenBLAS (``analyzer.get_ner_pipeline``): the same
  entities as spaCy's stock pipeline for about half its CPU time;
- NER reads every distinct value in full: there is no pruning on capital letters, because the
  French model finds names typed in lower case ("merci de rappeler jean dupont");
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from charter_guardrails.checks.privacy.masking import mask

if TYPE_CHECKING:
    import pandas as pd

    from charter_guardrails.core.policy import Dataset, PrivacyPolicy

log = logging.getLogger(__name__)

ScanMode = Literal["sampling", "exhaustive"]

#: Score of a look-alike that fails its checksum: reported as a suspect, never as the entity.
SUSPECT_SCORE = 0.1
#: Presidio's context enhancement factor: a context word near a match (or naming the column) adds it.
CONTEXT_BOOST = 0.35
#: Characters before a match searched for a context word.
CONTEXT_WINDOW = 48
#: spaCy processes long cells in pieces of at most this many characters, cut at a space.
NER_CHUNK_CHARS = 20_000
#: Characters per ``nlp.pipe`` call: the NER's memory grows with the tokens of a batch, so a batch
#: of long cells is split (1,024 cells of 100,000 characters would need tens of GB); short
#: cells still go 1,024 at a time.
NER_BATCH_CHARS = 400_000
#: Texts per ``nlp.pipe`` batch (spaCy's NER runs its model on quarters of it, sorted by length): large
#: batches share more token windows (``analyzer.distinct_windows_tok2vec``).
NER_BATCH = 1024
#: A chunk handed to a worker: at most this many values, and about this many characters.
NER_CHUNK_TEXTS = 4000
NER_CHUNK_CHARS_TOTAL = 2_000_000
#: From how many distinct texts, or characters, worker processes are worth their start.
PARALLEL_NER_FROM = 20_000
PARALLEL_NER_CHARS = 2_000_000
#: A column whose values have this many words (median) is free text.
FREE_TEXT_MIN_WORDS = 4
#: Columns of fewer than :data:`VECTORISE_FROM` distinct values: values that could match any recognizer
#: go through all the patterns, the others through none.
PREFILTER = (
    r"\d\d|@|[0-9A-Z]{7}|[A-Z]{2}[- ]\d{3}"
    r"|\d(?: ?(?:bis|ter|[A-D]))?,? (?i:rue|av|bd|bo|ch|al|im|pl|co|qu|ro|tr|sq|pa|es|mo|lo|r[eé]|vo|se|fa)"
)
_PREFILTER = re.compile(PREFILTER)
#: From this many distinct values, the vectorised plan (Arrow) beats plain Python despite its per-call overhead.
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
    def from_policy(
        cls, privacy: PrivacyPolicy, dataset: Dataset | None = None, *, exhaustive: bool | None = None
    ) -> ScanOptions:
        from charter_guardrails.core.policy import ColumnRole

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
        )


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
        from charter_guardrails.checks.privacy.analyzer import recognizer_instances

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
        self._strong = {
            rec.supported_entities[0]: bool(getattr(rec, "STRONG_CHECKSUM", False)) for rec in self.recognizers
        }
        #: Every pattern: the plan code of a value that goes through all of them.
        self.all_patterns = (1 << len(self._patterns)) - 1
        self._subsets: dict[int, list[tuple[Any, re.Pattern[str], float]]] = {self.all_patterns: self._patterns}
        self._filters: list[str | None] | None = None

    def context_entities(self, column_name: str) -> set[str]:
        """Entities whose context words appear in a column name (``telephone_usager`` → FR_PHONE)."""
        name = _normalise(column_name)
        return {entity for entity, pattern in self._context.items() if pattern.search(name)}

    @property
    def filters(self) -> list[str | None]:
        """Per pattern, its RE2 over-approximation (:func:`re2_superset`), or ``None``: no filter, always run."""
        if self._filters is None:
            self._filters = [
                re2_superset(compiled.pattern, compiled.flags) if k < 63 else None
                for k, (_, compiled, _) in enumerate(self._patterns)
            ]
        return self._filters

    def plan(self, values: Sequence[str]) -> list[int]:
        """For each value, a bit set of the patterns that may match it (0: none can).

        From :data:`VECTORISE_FROM` values on, each pattern's RE2 over-approximation runs over the
        whole column in Arrow (C++), so the Python regexes and checksums run only where their
        pattern can match: a NIR column goes through the NIR pattern, not the sixteen. Below,
        building Arrow arrays costs more than it saves: the combined :data:`PREFILTER` decides.
        """
        if len(values) >= VECTORISE_FROM and len(self._patterns) <= 63:
            try:
                return self._vector_plan(values)
            except (ValueError, TypeError, UnicodeError) as exc:  # pyarrow's errors derive from these
                log.debug("vectorised pattern plan unavailable (%s); per-value pre-filter", type(exc).__name__)
        return [self.all_patterns if _PREFILTER.search(v) else 0 for v in values]

    def _vector_plan(self, values: Sequence[str]) -> list[int]:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        array = pa.array(values, type=pa.large_string())
        # Python's IGNORECASE lets i match İ and ı, RE2's does not: fold both before filtering
        # (one character for one: the filter only says which values to look at).
        array = pc.replace_substring(pc.replace_substring(array, "\u0130", "I"), "\u0131", "i")
        codes = np.zeros(len(values), dtype=np.int64)
        for k, regex in enumerate(self.filters):
            if regex is None:
                codes |= np.int64(1 << k)
            else:
                hit = pc.match_substring_regex(array, regex).to_numpy(zero_copy_only=False)
                codes |= hit.astype(np.int64) << k
        return [int(c) for c in codes.tolist()]

    def patterns_for(self, code: int) -> list[tuple[Any, re.Pattern[str], float]]:
        """The patterns of a plan code, in the recognizers' order."""
        subset = self._subsets.get(code)
        if subset is None:
            subset = self._subsets[code] = [p for k, p in enumerate(self._patterns) if code >> k & 1]
        return subset

    def pattern_hits(
        self, text: str, boosted: frozenset[str] | set[str] = frozenset(), code: int | None = None
    ) -> list[Hit]:
        """Regex + checksum hits in one value. ``boosted``: entities with context in the column name.

        ``code``: only the patterns of this :meth:`plan` code (the others cannot match); all by default.
        """
        hits: list[Hit] = []
        for rec, compiled, base in self._patterns if code is None else self.patterns_for(code):
            entity = rec.supported_entities[0]
            for match in compiled.finditer(text):
                matched = match.group(0)
                valid = rec.is_valid(matched)
                if valid is False:
                    hits.append(Hit(entity, match.start(), match.end(), SUSPECT_SCORE, True))
                    continue
                score = 1.0 if (valid and self._strong[entity]) else base
                if score < 1.0 and (
                    entity in boosted
                    or self._context[entity].search(
                        _normalise(text[max(0, match.start() - CONTEXT_WINDOW) : match.start()])
                    )
                ):
                    score = min(1.0, score + CONTEXT_BOOST)
                hits.append(Hit(entity, match.start(), match.end(), score))
        return _resolve_overlaps(hits)

    def planned_hits(
        self, values: Sequence[str], plan: Sequence[int], boosted: frozenset[str] | set[str]
    ) -> list[list[Hit]]:
        """:meth:`pattern_hits` of each value, through the patterns its plan code names."""
        return [self.pattern_hits(v, boosted, code) if code else [] for v, code in zip(values, plan, strict=True)]

    def ner_hits(self, texts: Sequence[str], *, n_process: int | None = None, label: str = "") -> list[list[Hit]]:
        """PERSON and LOCATION spans for each text, with spaCy's ``nlp.pipe`` in batches (``n_process`` > 1: worker processes)."""
        if n_process is None:
            n_process = ner_processes(texts)
        if n_process > 1:
            return _detect_parallel(texts, None, frozenset(), n_process, label)
        return _ner_hits_here(texts)


def re2_superset(regex: str, flags: int) -> str | None:
    r"""An RE2 regex that matches in every string where the Python ``regex`` does, or ``None``.

    It only filters (:meth:`Detector.plan`): a value it rejects cannot hold a match of the
    pattern; a value it accepts still goes through the Python pattern and its checksum. So the
    translation may accept more, never less:

    - look-arounds (``(?<!\w)``, ``(?=…)``), ``\b``, ``^``, ``$`` are dropped: they only restrict;
    - Python's Unicode classes get RE2 classes at least as wide: ``\d`` → ``\p{Nd}``,
      ``\w`` → ``[\p{L}\p{N}_]``, ``\s`` → every Unicode space; ``\uXXXX`` → ``\x{XXXX}``;
    - the flags become ``(?i)`` and ``(?s)``;
    - anything else RE2 might read differently (``\W``, ``\D``, ``\S``, back-references and octal
      escapes, ``{,n}``, POSIX-looking ``[:``, possessive or atomic groups, verbose mode), or a
      result RE2 does not compile: ``None``.
    """
    if "{," in regex or "[:" in regex or "(?x" in regex or flags & re.VERBOSE:
        return None
    out: list[str] = []
    i, n, in_class = 0, len(regex), False
    while i < n:
        c = regex[i]
        if c == "\\":
            nxt = regex[i + 1 : i + 2]
            if nxt == "d":
                out.append(r"\p{Nd}")
            elif nxt == "w":
                out.append(r"\p{L}\p{N}_" if in_class else r"[\p{L}\p{N}_]")
            elif nxt == "s":
                out.append(_RE2_SPACES if in_class else f"[{_RE2_SPACES}]")
            elif nxt in ("b", "B", "A", "Z") and not in_class:
                pass
            elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", regex[i + 2 : i + 6]):
                out.append(r"\x{" + regex[i + 2 : i + 6] + "}")
                i += 6
                continue
            elif nxt.isalnum() and nxt not in "tnrfvx":
                return None
            else:
                out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            out.append(c)
            in_class = c != "]"
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if regex[i : i + 1] == "^":
                out.append("^")
                i += 1
            if regex[i : i + 1] == "]":
                out.append(r"\]")
                i += 1
            continue
        if regex.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            i = _group_end(regex, i)
            continue
        if regex.startswith(("(?>", "(?P=", "(?("), i) or (c in "*+?}" and regex[i + 1 : i + 2] == "+"):
            return None
        if c not in "^$":
            out.append(c)
        i += 1
    result = ("(?i)" if flags & re.IGNORECASE else "") + ("(?s)" if flags & re.DOTALL else "") + "".join(out)
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        pc.match_substring_regex(pa.array([""]), result)
    except (ImportError, ValueError, TypeError):
        return None
    return result


#: Everything Python's ``\s`` matches in a ``str`` pattern, in RE2 syntax.
_RE2_SPACES = r"\t\n\x0b\f\r \x1c-\x1f\x{85}\p{Z}"


def _group_end(regex: str, i: int) -> int:
    """Index just after the group that opens at ``regex[i]``."""
    depth, in_class = 0, False
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i += 1 + (regex[i + 1 : i + 2] == "^")
            if regex[i : i + 1] == "]":
                i += 1
            continue
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced group in {regex!r}")


def ner_processes(texts: Sequence[str]) -> int:
    """NER processes for these texts: all cores (up to 4) for large inputs, one for small ones."""
    import multiprocessing

    if multiprocessing.current_process().daemon:  # a daemonic process may not have children
        return 1
    if len(texts) < PARALLEL_NER_FROM and sum(map(len, texts)) < PARALLEL_NER_CHARS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4))


def _ner_hits_here(texts: Sequence[str]) -> list[list[Hit]]:
    """NER in this process; cells over :data:`NER_CHUNK_CHARS` are read in pieces."""
    from charter_guardrails.checks.privacy.analyzer import (
        NER_ENTITY_MAPPING,
        NER_SCORE,
        get_ner_pipeline,
        one_blas_thread,
    )

    nlp = get_ner_pipeline()
    pieces: list[str] = []
    owners: list[tuple[int, int]] = []  # (text index, offset of the piece in the text)
    for i, text in enumerate(texts):
        for offset, piece in _cut(text, NER_CHUNK_CHARS):
            pieces.append(piece)
            owners.append((i, offset))
    out: list[list[Hit]] = [[] for _ in texts]
    with one_blas_thread():
        for start, end in _char_batches(pieces, NER_BATCH, NER_BATCH_CHARS):
            docs = nlp.pipe(pieces[start:end], batch_size=NER_BATCH)
            for (index, offset), doc in zip(owners[start:end], docs, strict=True):
                for ent in doc.ents:
                    entity = NER_ENTITY_MAPPING.get(ent.label_)
                    if entity:
                        out[index].append(Hit(entity, ent.start_char + offset, ent.end_char + offset, NER_SCORE))
    return out


def _cut(text: str, limit: int) -> Iterator[tuple[int, str]]:
    """``text`` in pieces of at most ``limit`` characters, each cut after a space when one is near
    the limit (so that a word, and mostly a name, stays whole), with the offset of each piece."""
    if len(text) <= limit:
        yield 0, text
        return
    offset = 0
    while offset < len(text):
        end = min(offset + limit, len(text))
        if end < len(text):
            space = text.rfind(" ", offset + limit // 2, end)
            if space > offset:
                end = space + 1
        yield offset, text[offset:end]
        offset = end


def _char_batches(pieces: Sequence[str], max_items: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """``[start, end)`` ranges of ``pieces`` with at most ``max_items`` items and, unless one piece is
    longer on its own, at most ``max_chars`` characters."""
    start, chars = 0, 0
    for i, piece in enumerate(pieces):
        if i > start and (i - start >= max_items or chars + len(piece) > max_chars):
            yield start, i
            start, chars = i, 0
        chars += len(piece)
    if start < len(pieces):
        yield start, len(pieces)


def _detect_chunk(task: tuple[list[str], list[int] | None, frozenset[str]]) -> list[list[Hit]]:
    """In a worker: the pattern pass (when planned) and NER on one chunk of distinct values, merged."""
    values, plan, boosted = task
    ner = _ner_hits_here(values)
    if plan is None:
        return ner
    pattern = get_detector().planned_hits(values, plan, boosted)
    return [merge_ner(p, n) for p, n in zip(pattern, ner, strict=True)]


def _chunks(count: int, sizes: Iterable[int]) -> list[tuple[int, int]]:
    """(start, end) of consecutive chunks of at most :data:`NER_CHUNK_TEXTS` values and about :data:`NER_CHUNK_CHARS_TOTAL` characters."""
    bounds: list[tuple[int, int]] = []
    start = chars = 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= NER_CHUNK_TEXTS or chars + size > NER_CHUNK_CHARS_TOTAL):
            bounds.append((start, i))
            start, chars = i, 0
        chars += size
    if start < count:
        bounds.append((start, count))
    return bounds


def _detect_parallel(
    values: Sequence[str], plan: Sequence[int] | None, boosted: frozenset[str], n_process: int, label: str
) -> list[list[Hit]]:
    """Pattern pass and NER in ``n_process`` forked workers, chunk by chunk, in order.

    Workers return only hits (entity, offsets, score): spaCy's own ``n_process`` ships whole
    ``Doc`` objects back, which doubled the CPU cost per text. They inherit the loaded model and
    the compiled recognizers from the parent by fork: nothing is reloaded.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from charter_guardrails.checks.privacy.analyzer import get_ner_pipeline

    get_ner_pipeline()
    get_detector()
    bounds = _chunks(len(values), map(len, values))
    tasks = ((list(values[a:b]), None if plan is None else list(plan[a:b]), boosted) for a, b in bounds)
    out: list[list[Hit]] = []
    started = last = time.monotonic()
    with ProcessPoolExecutor(max_workers=n_process, mp_context=multiprocessing.get_context("fork")) as pool:
        for hits in pool.map(_detect_chunk, tasks):
            out.extend(hits)
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_SECONDS:
                last = now
                log.info(
                    "personal data scan: NER %s%d/%d texts (%.0f/s, %d processes)",
                    f"{label}: " if label else "",
                    len(out),
                    len(values),
                    len(out) / (now - started),
                    n_process,
                )
    return out


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


def detect_values(
    values: Sequence[str], kind: str, column_name: str = "", *, n_process: int | None = None
) -> list[list[Hit]]:
    """Hits for each distinct value of one column (offsets into the value).

    Every value goes through the patterns its :meth:`Detector.plan` names; free-text and
    name-like columns also through NER, in worker processes for large inputs (which then run
    the pattern pass on their chunk too).
    """
    if not values:
        return []
    detector = get_detector()
    boosted = frozenset(detector.context_entities(column_name))
    plan = detector.plan(values)
    if kind not in ("free_text", "name_like"):
        return detector.planned_hits(values, plan, boosted)
    workers = ner_processes(values) if n_process is None else n_process
    if workers > 1:
        return _detect_parallel(values, plan, boosted, workers, column_name)
    pattern = detector.planned_hits(values, plan, boosted)
    return [merge_ner(p, n) for p, n in zip(pattern, _ner_hits_here(values), strict=True)]


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

    def add(self, rows: int, value: str, hit: Hit, limit: int) -> None:
        self.rows += rows
        self.weighted += rows * hit.score
        if hit.score > self.max:
            self.max = hit.score
        if len(self.examples) < limit:  # masked only while an example is still wanted
            example = mask(value[hit.start : hit.end], hit.entity_type)
            if example not in self.examples:
                self.examples.append(example)

    def finding(self, entity: str, scanned: int) -> EntityFinding:
        return EntityFinding(
            entity,
            self.rows,
            self.rows / scanned if scanned else 0.0,
            self.weighted / self.rows if self.rows else 0.0,
            self.max,
            self.examples,
        )


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
            found.setdefault(entity, _Tally()).add(count, value, hit, options.max_examples)
        for entity, hit in low.items():
            if entity not in best:
                suspect.setdefault(entity, _Tally()).add(count, value, hit, options.max_examples)
    notes = []
    longest = max(len(v) for v in values)
    if longest > 1_000_000:
        notes.append(f"cells up to {longest} characters: NER read them in {NER_CHUNK_CHARS}-character pieces")
    by_rows = lambda f: (-f.count, f.entity_type)  # noqa: E731
    return ColumnScan(
        name,
        kind,
        rows,
        non_null,
        len(values),
        findings=sorted((t.finding(e, rows) for e, t in found.items()), key=by_rows),
        suspects=sorted((t.finding(e, rows) for e, t in suspect.items()), key=by_rows),
        notes=notes,
    )


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
            guarantee = (
                f"sampling: {n} of {total} rows drawn at random; a column where at least {options.min_detectable_rate:.2%} "
                f"of the rows hold an entity is found with probability at least "
                f"{1 - miss_probability(options.min_detectable_rate, n):.6f} (asked: {options.confidence})"
            )
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
            log.info(
                "personal data scan of %s: %d/%d columns, %d rows each, %.0f s",
                source,
                k + 1,
                width,
                len(scanned),
                now - started,
            )
    seconds = time.monotonic() - started
    log.info(
        "personal data scan of %s (%s): %d columns, %d of %d rows, %d columns with personal data, %.1f s",
        source,
        options.mode,
        width,
        len(scanned),
        total,
        sum(1 for c in columns if c.findings),
        seconds,
    )
    return ScanReport(
        source=source,
        mode=options.mode,
        rows=total,
        scanned_rows=len(scanned),
        min_score=options.min_score,
        columns=columns,
        guarantee=guarantee,
        seconds=seconds,
    )
