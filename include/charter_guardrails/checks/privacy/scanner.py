"""The column scanner: which personal data each column of a table holds, fast and without leaking it.

Speed comes from design, not from skipping data:

- each column is reduced to its **distinct values** with their row counts, and every value is
  analysed once;
- **structured** columns (codes, numbers, identifiers) go through the regex + checksum
  recognizers only. A vectorised pass plans the work: each recognizer pattern has an RE2
  over-approximation (:func:`~charter_guardrails.checks.privacy.prefilter.re2_superset`) that
  Arrow runs over the whole column in C++, so a
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
  (the policy's ``min_detectable_rate`` and ``confidence``): a column where at least ``rate`` of
  the rows hold an entity is then found with probability ``confidence`` or more (rate 1 %, confidence 99 %: n = 459).
  **Exhaustive** mode analyses every distinct value.

Results carry counts, shares, scores and masked examples only. Logs carry counts and column
names only.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from charter_guardrails.checks.privacy.detector import VECTORISE_FROM, get_detector, merge_ner, scan_config
from charter_guardrails.checks.privacy.masking import mask
from charter_guardrails.checks.privacy.ner_pool import (
    NER_CHUNK_CHARS,
    PROGRESS_EVERY_SECONDS,
    detect_parallel,
    ner_hits_here,
    ner_processes,
)
from charter_guardrails.checks.privacy.recognizers.date_of_birth_recognizer import column_rules
from charter_guardrails.checks.privacy.report import (
    EXHAUSTIVE_GUARANTEE,
    ColumnScan,
    EntityFinding,
    Hit,
    ScanOptions,
    ScanReport,
    sample_size,
    sampling_guarantee,
)

if TYPE_CHECKING:
    import pandas as pd

    from charter_guardrails.checks.privacy.recognizers import RecognizerConfig

log = logging.getLogger(__name__)

#: Distinct values analysed together: the hits of a column of a million distinct messages would take hundreds
#: of MB at once. Each value's hits do not depend on the others, so slicing changes no result.
ANALYSE_SLICE = 100_000
#: A column whose values have this many words (median) is free text.
FREE_TEXT_MIN_WORDS = 4
#: Words of at least two letters: "06 12 34 56 78" has none, "rue de la Paix" four.
_WORDS = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
_NAME_LIKE = re.compile(r"^[^\W\d_][^\W\d_'’ .\-]*(?:[ '’.\-]+[^\W\d_]+){1,3}\.?$", re.UNICODE)


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
    values: Sequence[str],
    kind: str,
    column_name: str = "",
    *,
    n_process: int | None = None,
    config: RecognizerConfig | None = None,
) -> list[list[Hit]]:
    """Hits for each distinct value of one column (offsets into the value).

    Every value goes through the patterns its :meth:`Detector.plan` names; free-text and
    name-like columns also through NER, in worker processes for large inputs (which then run
    the pattern pass on their chunk too). ``config``: which recognizers (:func:`.detector.scan_config`).
    """
    if not values:
        return []
    detector = get_detector(config)
    boosted = frozenset(detector.context_entities(column_name))
    plan = detector.plan(values)
    if kind not in ("free_text", "name_like"):
        return detector.planned_hits(values, plan, boosted)
    workers = ner_processes(values) if n_process is None else n_process
    if workers > 1:
        return detect_parallel(values, plan, boosted, workers, column_name, config)
    pattern = detector.planned_hits(values, plan, boosted)
    return [merge_ner(p, n) for p, n in zip(pattern, ner_hits_here(values), strict=True)]


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
    return [str(v) for v in counts.index], [int(c) for c in counts.to_numpy()], len(present)


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
    values, counts, non_null = distinct_values(series)
    return scan_distinct(name, len(series), values, counts, non_null, options)


def scan_distinct(
    name: str, rows: int, values: Sequence[str], counts: Sequence[int], non_null: int, options: ScanOptions
) -> ColumnScan:
    """Scan one column given as its distinct non-empty values (most frequent first) and their row counts, out of
    ``rows`` scanned rows: :func:`scan_column` on a Series, the streaming scan (:mod:`.stream`) on Arrow counts."""
    if not values:
        return ColumnScan(name, "empty", rows, 0, 0, notes=["empty or all-null column"])
    kind = column_kind(name, values, options.free_text_columns)
    found: dict[str, _Tally] = {}
    suspect: dict[str, _Tally] = {}
    for start in range(0, len(values), ANALYSE_SLICE):  # the hits of one slice at a time: memory stays bounded
        part, part_counts = values[start : start + ANALYSE_SLICE], counts[start : start + ANALYSE_SLICE]
        hits = detect_values(part, kind, name, n_process=options.n_process, config=scan_config(options))
        _tally(part, part_counts, hits, options, found, suspect)
    # a column of birth dates is a property of the column, not of a value (see date_of_birth_recognizer)
    more, more_suspects = column_rules(name, values, counts, rows, options, set(found))
    notes = []
    longest = max(len(v) for v in values)
    if longest > 1_000_000:
        notes.append(f"cells up to {longest} characters: NER read them in {NER_CHUNK_CHARS}-character pieces")
    by_rows = lambda f: (-f.count, f.entity_type)  # noqa: E731 - a sort key, used twice below
    return ColumnScan(
        name,
        kind,
        rows,
        non_null,
        len(values),
        findings=sorted([*(t.finding(e, rows) for e, t in found.items()), *more], key=by_rows),
        suspects=sorted([*(t.finding(e, rows) for e, t in suspect.items()), *more_suspects], key=by_rows),
        notes=notes,
    )


def _tally(
    values: Sequence[str],
    counts: Sequence[int],
    hits: Sequence[Sequence[Hit]],
    options: ScanOptions,
    found: dict[str, _Tally],
    suspect: dict[str, _Tally],
) -> None:
    """Add each value's best hit per entity to the column's tallies: found, or suspect below the threshold."""
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


def _rows_to_scan(frame: pd.DataFrame, options: ScanOptions) -> tuple[pd.DataFrame, str]:
    """The rows to scan (all of them, or a random sample) and the guarantee that choice gives."""
    if options.mode != "sampling":
        return frame, EXHAUSTIVE_GUARANTEE
    total = len(frame)
    n = sample_size(options.min_detectable_rate, options.confidence)
    scanned = frame if total <= n else frame.sample(n=n, random_state=options.seed)
    return scanned, sampling_guarantee(options, total)


def scan_frame(frame: pd.DataFrame, options: ScanOptions | None = None, *, source: str = "dataframe") -> ScanReport:
    """Scan every column of ``frame``; in sampling mode on a random sample of rows."""
    options = options or ScanOptions()
    started = time.monotonic()
    total = len(frame)
    scanned, guarantee = _rows_to_scan(frame, options)
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
