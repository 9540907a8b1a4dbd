"""The bulk detector: the pattern recognizers compiled once, planned per value, and their hits.

Every value goes through the patterns its plan names (:meth:`Detector.plan`), with the recognizers'
own scores, context words and checks, so the scanner and Presidio's analyzer agree on what is an
entity. A detector holds the recognizers of one :class:`~.recognizers.RecognizerConfig` (the
policy's national identifiers and default phone region): the list Presidio's analyzer is built
from for that configuration. NER runs in :mod:`~charter_guardrails.checks.privacy.ner_pool`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.privacy.prefilter import PREFILTER_RE, re2_superset
from charter_guardrails.checks.privacy.report import Hit

if TYPE_CHECKING:
    from charter_guardrails.checks.privacy.recognizers import RecognizerConfig
    from charter_guardrails.checks.privacy.report import ScanOptions

log = logging.getLogger(__name__)

#: Score of a look-alike that fails its checksum: reported as a suspect, never as the entity.
SUSPECT_SCORE = 0.1
#: Presidio's context enhancement factor: a context word near a match (or naming the column) adds it.
CONTEXT_BOOST = 0.35
#: Characters before a match searched for a context word.
CONTEXT_WINDOW = 48
#: From this many distinct values, the vectorised plan (Arrow) beats plain Python despite its per-call overhead.
VECTORISE_FROM = 2000


def normalise_context(text: str) -> str:
    """Lower case, no accents, ``_-./`` as spaces: how context words and column names are compared."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[_\-./]+", " ", text)


_normalise = normalise_context


class Detector:
    """The pattern recognizers of one configuration compiled for bulk use, and the NER pipeline on demand.

    It uses the recognizers' own patterns, scores, context words and checks (``is_valid``), so the
    scanner and Presidio's analyzer agree on what is an entity.
    """

    def __init__(self, config: RecognizerConfig | None = None) -> None:
        from charter_guardrails.checks.privacy.analyzer import recognizer_instances

        self.config = config
        self.recognizers = recognizer_instances(config)
        self._patterns: list[tuple[Any, re.Pattern[str], float]] = []
        words_of: dict[str, set[str]] = {}
        for rec in self.recognizers:
            flags = getattr(rec, "global_regex_flags", None)
            flags = re.DOTALL | re.MULTILINE | re.IGNORECASE if flags is None else flags
            for pattern in rec.patterns:
                self._patterns.append((rec, re.compile(pattern.regex, flags), pattern.score))
            words_of.setdefault(rec.supported_entities[0], set()).update(_normalise(w) for w in rec.context)
        self._context: dict[str, re.Pattern[str]] = {
            entity: re.compile(
                r"(?<![a-z])(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")"
            )
            for entity, words in words_of.items()
            if words
        }
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
        return [self.all_patterns if PREFILTER_RE.search(v) else 0 for v in values]

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
                context = self._context.get(entity)
                if score < 1.0 and (
                    entity in boosted
                    or (
                        context is not None
                        and context.search(_normalise(text[max(0, match.start() - CONTEXT_WINDOW) : match.start()]))
                    )
                ):
                    score = min(1.0, score + CONTEXT_BOOST)
                hits.append(Hit(entity, match.start(), match.end(), score))
        return resolve_overlaps(hits)

    def planned_hits(
        self, values: Sequence[str], plan: Sequence[int], boosted: frozenset[str] | set[str]
    ) -> list[list[Hit]]:
        """:meth:`pattern_hits` of each value, through the patterns its plan code names."""
        return [self.pattern_hits(v, boosted, code) if code else [] for v, code in zip(values, plan, strict=True)]

    def ner_hits(self, texts: Sequence[str], *, n_process: int | None = None, label: str = "") -> list[list[Hit]]:
        """PERSON and LOCATION spans for each text, with spaCy's ``nlp.pipe`` in batches
        (``n_process`` > 1: worker processes)."""
        from charter_guardrails.checks.privacy.ner_pool import detect_parallel, ner_hits_here, ner_processes

        if n_process is None:
            n_process = ner_processes(texts)
        if n_process > 1:
            return detect_parallel(texts, None, frozenset(), n_process, label)
        return ner_hits_here(texts)


def resolve_overlaps(hits: list[Hit]) -> list[Hit]:
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


_DETECTORS: dict[RecognizerConfig | None, Detector] = {}


def get_detector(config: RecognizerConfig | None = None) -> Detector:
    """The process-wide :class:`Detector` of a recognizer configuration (its regexes compiled once);
    ``None``: the default one (no national identifiers, phone region FR)."""
    from charter_guardrails.checks.privacy.recognizers import DEFAULT_CONFIG

    key = None if config == DEFAULT_CONFIG else config
    detector = _DETECTORS.get(key)
    if detector is None:
        detector = _DETECTORS[key] = Detector(key)
    return detector


def scan_config(options: ScanOptions) -> RecognizerConfig:
    """The recognizer configuration of a scan: its national identifiers and default phone region."""
    from charter_guardrails.checks.privacy.recognizers import RecognizerConfig

    return RecognizerConfig.of(options.national_identifiers, options.phone_region)
