"""NER over many texts: spaCy's ``nlp.pipe`` in bounded batches, here or in forked worker processes.

Workers return only hits (entity, offsets, score), never spaCy ``Doc`` objects, and inherit the loaded
model and the compiled recognizers from the parent by fork: nothing is reloaded.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from charter_guardrails.checks.privacy.detector import get_detector, merge_ner
from charter_guardrails.checks.privacy.report import Hit

if TYPE_CHECKING:
    from charter_guardrails.checks.privacy.recognizers import RecognizerConfig

log = logging.getLogger(__name__)

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
PROGRESS_EVERY_SECONDS = 10.0


def ner_processes(texts: Sequence[str]) -> int:
    """NER processes for these texts: all cores (up to 4) for large inputs, one for small ones."""
    import multiprocessing

    if multiprocessing.current_process().daemon:  # a daemonic process may not have children
        return 1
    if len(texts) < PARALLEL_NER_FROM and sum(map(len, texts)) < PARALLEL_NER_CHARS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4))


def ner_hits_here(texts: Sequence[str]) -> list[list[Hit]]:
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


def _detect_chunk(
    task: tuple[list[str], list[int] | None, frozenset[str], RecognizerConfig | None],
) -> list[list[Hit]]:
    """In a worker: the pattern pass (when planned) and NER on one chunk of distinct values, merged."""
    values, plan, boosted, config = task
    ner = ner_hits_here(values)
    if plan is None:
        return ner
    pattern = get_detector(config).planned_hits(values, plan, boosted)
    return [merge_ner(p, n) for p, n in zip(pattern, ner, strict=True)]


def _chunks(count: int, sizes: Iterable[int]) -> list[tuple[int, int]]:
    """(start, end) of consecutive chunks of at most :data:`NER_CHUNK_TEXTS` values and about
    :data:`NER_CHUNK_CHARS_TOTAL` characters."""
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


def detect_parallel(
    values: Sequence[str],
    plan: Sequence[int] | None,
    boosted: frozenset[str],
    n_process: int,
    label: str,
    config: RecognizerConfig | None = None,
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
    get_detector(config)
    bounds = _chunks(len(values), map(len, values))
    tasks = ((list(values[a:b]), None if plan is None else list(plan[a:b]), boosted, config) for a, b in bounds)
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
