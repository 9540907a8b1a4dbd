"""The analysis of a large file's sample, in a forked process that loads the analysers while the file is read.

A sampling scan of a large file spends most of its time reading, and a few seconds loading the analysers
(Presidio's recognizers, and spaCy's French pipeline, whose tokenizer exceptions compile large regular
expressions). Loading them in a thread beside the read does not hide those seconds: the loading holds the
GIL for long stretches, and the reading loop needs it between every pyarrow batch. On 2,000,000 rows the read
phase took 2.5 times as long with the loading thread beside it as alone. A process has a GIL of its own: it is
forked before the read, loads the analysers on the other core, and receives the sample (a few hundred rows, as
plain lists) once the read is over. The reading process never loads spaCy, so it also ends sooner.

The process is used only where it pays and is possible: a sampling scan of a file of at least
``stream.PRELOAD_FROM_BYTES``, on a platform that forks, from a process that may have children and has not
loaded the NER model already. Elsewhere the analysis runs in the calling process, as it always may.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from charter_guardrails.checks.privacy.report import ColumnScan, ScanOptions

log = logging.getLogger(__name__)

#: A column of the sample, as sent to the process: (name, distinct values, their row counts, non-empty rows).
SampleColumn = tuple[str, list[str], list[int], int]
#: How long the reading process waits, at most, for the analysis of a sample once the process has the model.
ANALYSIS_WAIT_SECONDS = 3600.0
_NER_MODULE = "charter_guardrails.checks.privacy.analyzer"


def worth_a_process(options: ScanOptions) -> bool:
    """Whether the sample of this scan should be analysed in a forked process (see the module's docstring)."""
    if options.mode != "sampling" or "fork" not in multiprocessing.get_all_start_methods():
        return False
    if multiprocessing.current_process().daemon:  # a daemonic process may not have children
        return False
    analyzer = sys.modules.get(_NER_MODULE)
    loaded = analyzer is not None and analyzer.get_ner_pipeline.cache_info().currsize > 0
    return not loaded  # a process that holds the model already analyses at once


def analyse_columns(columns: Sequence[SampleColumn], scanned: int, options: ScanOptions) -> list[ColumnScan]:
    """Each column through :func:`.scanner.scan_distinct`, in this process."""
    from charter_guardrails.checks.privacy.scanner import scan_distinct

    return [
        scan_distinct(name, scanned, values, counts, non_null, options) for name, values, counts, non_null in columns
    ]


class AnalyserProcess:
    """A forked process that loads the analysers at once, then analyses one sample sent to it."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="charter-scan-analyser", daemon=True)
        self._process.start()
        child.close()

    def analyse(self, columns: Sequence[SampleColumn], scanned: int, options: ScanOptions) -> list[ColumnScan]:
        """The sample's column scans, from the process; if it ended without an answer (killed, out of memory),
        the analysis runs here instead, and a warning says so. An error of the analysis is raised here."""
        try:
            self._conn.send((list(columns), scanned, options))
            if not self._conn.poll(ANALYSIS_WAIT_SECONDS):
                raise TimeoutError(f"no answer in {ANALYSIS_WAIT_SECONDS:.0f} s")
            status, value = self._conn.recv()
        except (EOFError, OSError, TimeoutError) as exc:
            self.close()
            log.warning(
                "personal data scan: the analyser process ended without an answer (%s, exit code %s); "
                "the sample is analysed in this process",
                type(exc).__name__,
                self._process.exitcode,
            )
            return analyse_columns(columns, scanned, options)
        if status == "error":
            raise value
        scans: list[ColumnScan] = value
        return scans

    def close(self) -> None:
        self._conn.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)


def _serve(conn: Connection) -> None:
    """In the forked process: load the analysers, analyse the one sample received, answer, and end."""
    # No cyclic garbage collection here: it would finalise objects inherited from the reading process, such as a
    # pooled SQLite connection, whose close in this process could roll back a journal the reading process owns.
    # This process is short-lived and ends with os._exit; reference counting frees the rest.
    gc.disable()
    try:
        import charter_guardrails.checks.privacy.scanner  # noqa: F401 - Presidio, spaCy and the recognizers
        from charter_guardrails.checks.privacy.analyzer import get_ner_pipeline

        get_ner_pipeline()
        columns, scanned, options = conn.recv()
        answer: tuple[str, Any] = ("ok", analyse_columns(columns, scanned, options))
    except EOFError:
        answer = ("gone", None)  # the reading process ended first (its read failed): nothing to analyse
    except Exception as exc:  # noqa: BLE001 - every error goes back to the reading process, which raises it
        answer = ("error", exc)
    try:
        if answer[0] != "gone":
            try:
                conn.send(answer)
            except Exception as exc:  # noqa: BLE001 - an exception that does not pickle goes back as its message
                conn.send(("error", RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}; {exc}")))
    finally:
        conn.close()
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        # the analysers' memory is not worth freeing object by object: the process ends here
        os._exit(0)
