"""Personal-data scans of CSV and Parquet files, read as a stream (:mod:`.stream_read`), in bounded memory.

The scan never holds the file: it reads it batch by batch, every column as text (the recognizers read text; no
type is guessed, so decimal commas and codes with leading zeros stay as written), and keeps only what the mode
needs:

- **sampling**: a seeded uniform sample of ``n = sample_size(rate, confidence)`` rows (:class:`.sampler.Reservoir`),
  whatever the length of the file, so peak memory does not depend on the number of rows. In a Parquet file the
  ``n`` row positions are drawn first, and only the row groups holding one are read. Both give a simple random
  sample of all the rows, so the guarantee of :func:`.report.sampling_guarantee` holds as it does for
  ``DataFrame.sample``;
- **exhaustive**: each column's distinct values with their row counts (:class:`.sampler.DistinctCounts`), merged
  across batches; each distinct value is then analysed once. Memory grows with the distinct values, not with
  the rows; a file larger than :data:`EXHAUSTIVE_PASS_BYTES` is read once per group of columns, so that the
  values held at once stay near that size.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from charter_guardrails.checks.privacy.ner_pool import PROGRESS_EVERY_SECONDS
from charter_guardrails.checks.privacy.progress import ReadProgress
from charter_guardrails.checks.privacy.report import ColumnScan, ScanOptions, ScanReport, Window
from charter_guardrails.checks.privacy.stream_read import Read, column_weights, read_csv, read_parquet

if TYPE_CHECKING:
    from charter_guardrails.core.policy_models import CsvDialect, Dataset

log = logging.getLogger(__name__)

#: From this size on, the analysers (Presidio's recognizers, the NER model) load while the file is read, not after:
#: in a forked process for a sampling scan (:mod:`.analyser_process`), else in a thread (an exhaustive scan's
#: worker processes fork from this one, so the model must be here). For the thread, the interpreter switches
#: every PRELOAD_SWITCH_SECONDS (not 5 ms), so that the loading thread, which holds the GIL for long stretches,
#: delays the reading thread's hand-over between batches less.
PRELOAD_FROM_BYTES = 64 << 20
PRELOAD_SWITCH_SECONDS = 0.0005
#: An exhaustive scan of a larger file (CSV bytes, or Parquet's uncompressed bytes) reads it once per group of
#: columns: its distinct values, a large part of the file when most are unique, would otherwise be held at once.
EXHAUSTIVE_PASS_BYTES = 64 << 20


# ------------------------------------------------------------------------------------------------
# the scan


def scan_file(
    path: Path,
    options: ScanOptions | None = None,
    *,
    dialect: CsvDialect | None = None,
    parquet: bool | None = None,
    source: str | None = None,
    columns: Sequence[str] | None = None,
    window: Window | None = None,
) -> ScanReport:
    """Scan a CSV or Parquet file (or a folder of Parquet files) for personal data, read as a stream.

    ``dialect``: the CSV dialect (default: detected); ``parquet``: the format (default: from the suffix);
    ``columns``: read only these (default: all, as a scan for undeclared personal data needs). The report has the
    shape of :func:`.scanner.scan_frame`'s: ``rows`` the rows of the file, ``scanned_rows`` those analysed;
    ``window``: scan only these rows, one partition of the file (:mod:`.partitioned`).
    Unreadable input raises :class:`~charter_guardrails.core.errors.DatasetReadError`.
    """
    from charter_guardrails.readers.files import detect_csv_dialect

    options = options or ScanOptions()
    source = source or path.name
    started = time.monotonic()
    parquet = path.suffix.lower() == ".parquet" or path.is_dir() if parquet is None else parquet
    size = path.stat().st_size if path.is_file() else 0
    scans: list[ColumnScan] = []
    with _analysers(size >= PRELOAD_FROM_BYTES, options, started) as analyse:
        if not parquet:
            dialect = dialect or detect_csv_dialect(path).as_policy_dialect()
        groups, order = _column_groups(path, parquet, dialect, columns, options)
        arrow = True
        for k, group in enumerate(groups):
            label = source if len(groups) == 1 else f"{source} (pass {k + 1} of {len(groups)})"
            progress = ReadProgress(label, total_bytes=size if size and not parquet else None)
            try:
                if parquet:
                    read = read_parquet(path, options, group, progress, window=window)
                else:
                    assert dialect is not None  # noqa: S101 - detected above
                    read = read_csv(path, dialect, options, group, progress, arrow=arrow, window=window)
                    arrow = read.arrow  # what pyarrow refused once, pandas reads on every pass
            finally:
                progress.close()
            scans += analyse(read, label)
    scans.sort(key=lambda c: order.get(c.name, len(order)))  # stable: one pass keeps the order of the file
    return scan_report(read, scans, options, source, started)


def _column_groups(
    path: Path, parquet: bool, dialect: CsvDialect | None, columns: Sequence[str] | None, options: ScanOptions
) -> tuple[list[Sequence[str] | None], dict[str, int]]:
    """The columns to read per pass, and their order in the report: all at once, unless an exhaustive scan of a
    file larger than :data:`EXHAUSTIVE_PASS_BYTES`, whose columns are shared among passes of about that many
    bytes each (the largest first, each to the lightest pass)."""
    plan = column_weights(path, parquet, dialect, columns) if options.mode == "exhaustive" else None
    if plan is None:
        return [columns], {}
    names, weights = plan
    passes = min(len(names), math.ceil(sum(weights) / EXHAUSTIVE_PASS_BYTES))
    if passes <= 1:
        return [columns], {}
    loads, groups = [0.0] * passes, [list[int]() for _ in range(passes)]
    for i in sorted(range(len(names)), key=lambda i: -weights[i]):
        lightest = loads.index(min(loads))
        groups[lightest].append(i)
        loads[lightest] += weights[i]
    log.info("personal data scan of %s: %d columns read in %d passes", path.name, len(names), passes)
    return [[names[i] for i in sorted(group)] for group in groups if group], {n: i for i, n in enumerate(names)}


@contextlib.contextmanager
def _analysers(large: bool, options: ScanOptions, started: float) -> Iterator[Callable[[Read, str], list[ColumnScan]]]:
    """What analyses a read: for a large file, a forked process that loads the analysers while this one reads
    (:mod:`.analyser_process`), or else a thread that does; for a small one, this process after the read."""
    from charter_guardrails.checks.privacy.analyser_process import AnalyserProcess, worth_a_process

    if large and worth_a_process(options):
        process = AnalyserProcess()
        try:
            yield lambda read, label: process.analyse(_sample_columns(read), read.scanned, options)
        finally:
            process.close()
        return
    with _preloading(large) as loaded:

        def here(read: Read, label: str) -> list[ColumnScan]:
            loaded()
            return analyse_read(read, options, label, started)

        yield here


def _sample_columns(read: Read) -> list[tuple[str, list[str], list[int], int]]:
    """The read's distinct values as plain lists (a sample: a few hundred rows), to send to another process."""
    columns = []
    for i, name in enumerate(read.counts.names):
        values, counts, non_null = read.counts.column(i)
        columns.append((name, list(values), list(counts), non_null))
    return columns


@contextlib.contextmanager
def _preloading(wanted: bool) -> Iterator[Callable[[], None]]:
    """Load the analysers in a thread while the body reads; the callable waits for them (the scan calls it before
    analysing; the model is cached per process). Errors are raised again, with their message, where they run."""
    if not wanted:
        yield lambda: None
        return

    def load() -> None:
        with contextlib.suppress(Exception):
            import charter_guardrails.checks.privacy.scanner  # noqa: F401 - Presidio, spaCy and the recognizers
            from charter_guardrails.checks.privacy.analyzer import get_ner_pipeline

            get_ner_pipeline()

    switch = sys.getswitchinterval()
    thread = threading.Thread(target=load, name="charter-analysers-preload", daemon=True)
    sys.setswitchinterval(min(switch, PRELOAD_SWITCH_SECONDS))
    thread.start()

    def wait() -> None:
        thread.join()
        sys.setswitchinterval(switch)

    try:
        yield wait
    finally:
        wait()


def analyse_read(read: Read, options: ScanOptions, source: str, started: float) -> list[ColumnScan]:
    """Each column's distinct values through :func:`.scanner.scan_distinct`, one column at a time."""
    import pyarrow as pa

    from charter_guardrails.checks.privacy.scanner import scan_distinct

    columns: list[ColumnScan] = []
    width = len(read.counts.names)
    last = time.monotonic()
    for i, name in enumerate(read.counts.names):
        values, counts, non_null = read.counts.column(i)
        columns.append(scan_distinct(name, read.scanned, values, counts, non_null, options))
        del values, counts
        pa.default_memory_pool().release_unused()  # the column's Arrow memory, back to the system
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_SECONDS:
            last = now
            log.info(
                "personal data scan of %s: %d/%d columns analysed, %d rows each, %.0f s",
                source,
                i + 1,
                width,
                read.scanned,
                now - started,
            )
    return columns


def scan_report(read: Read, columns: list[ColumnScan], options: ScanOptions, source: str, started: float) -> ScanReport:
    seconds = time.monotonic() - started
    log.info(
        "personal data scan of %s (%s, streamed): %d columns, %d of %d rows, %d columns with personal data, %.1f s",
        source,
        options.mode,
        len(columns),
        read.scanned,
        read.rows,
        sum(1 for c in columns if c.findings),
        seconds,
    )
    return ScanReport(
        source=source,
        mode=options.mode,
        rows=read.rows,
        scanned_rows=read.scanned,
        min_score=options.min_score,
        columns=columns,
        guarantee=read.guarantee,
        seconds=seconds,
    )


def scan_dataset(dataset: Dataset, path: Path | None, options: ScanOptions, *, source: str) -> ScanReport:
    """A declared dataset (or another file in its format, e.g. a variant), as :func:`.readers.files.read_dataset`
    reads it: a file streams through :func:`scan_file`; an SQL table is scanned in the database of the settings'
    ``data_url`` by :func:`.table_scan.scan_table`."""
    from charter_guardrails.core.policy_models import DatasetFormat

    if dataset.format is DatasetFormat.SQL and path is None:
        from sqlalchemy import create_engine

        from charter_guardrails.checks.privacy.table_scan import scan_table
        from charter_guardrails.core.settings import get_settings

        assert dataset.table is not None  # noqa: S101 - the policy model requires a table for an SQL dataset
        engine = create_engine(get_settings().data_url)
        try:
            return scan_table(engine, dataset.table, options, source=source)
        finally:
            engine.dispose()
    target = path or dataset.resolve_path()
    parquet = dataset.format is DatasetFormat.PARQUET or target.suffix.lower() == ".parquet" or target.is_dir()
    return scan_file(target, options, dialect=dataset.csv, parquet=parquet, source=source)
