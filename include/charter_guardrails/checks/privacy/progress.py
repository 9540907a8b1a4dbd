"""Progress of a long read: a bar on a terminal, a log line every ten seconds elsewhere (an Airflow task).

Both carry counts only (rows read, bytes read, columns) and the file's name, never a value.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from charter_guardrails.checks.privacy.ner_pool import PROGRESS_EVERY_SECONDS

if TYPE_CHECKING:
    from tqdm import tqdm

log = logging.getLogger(__name__)
MIB = 1 << 20


def _monotonic() -> float:
    """The clock of the log lines (a test replaces it with a fake clock, and never sleeps)."""
    return time.monotonic()


class ReadProgress:
    """Rows and bytes read so far, shown as a ``tqdm`` bar when ``stream`` (stderr) is a terminal, else logged at
    most every :data:`PROGRESS_EVERY_SECONDS`.

    The bar counts bytes when the size of the file is known (CSV), else rows when their number is (Parquet).
    """

    def __init__(
        self,
        source: str,
        *,
        total_bytes: int | None = None,
        clock: Callable[[], float] | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.source = source
        self.total_bytes = total_bytes
        self.total_rows: int | None = None
        self.columns = 0
        self.rows = 0
        self.bytes = 0
        self.lines = 0
        self._clock = clock or _monotonic
        self._started = self._last = self._clock()
        self._stream = stream if stream is not None else sys.stderr
        self._bar: tqdm[None] | None = None
        self._bar_wanted = _isatty(self._stream)

    def expect(self, *, rows: int) -> None:
        """The number of rows to read, when it is known before reading (a Parquet footer says it)."""
        self.total_rows = rows

    def restart(self) -> None:
        """The file is read again from its start (by another parser)."""
        self.rows = self.bytes = 0
        if self._bar is not None:
            self._bar.reset()

    def advance(self, rows: int, position: int | None = None) -> None:
        """``rows`` more rows read; ``position``: the bytes of the file read so far, when the reader knows it."""
        before = self.bytes
        self.rows += rows
        if position is not None:
            self.bytes = max(self.bytes, position)
        if self._bar_wanted:
            self._show(rows, self.bytes - before)
            return
        now = self._clock()
        if now - self._last >= PROGRESS_EVERY_SECONDS:
            self._last = now
            self.lines += 1
            size = f" of {self.total_bytes / MIB:.0f} MiB" if self.total_bytes else ""
            log.info(
                "personal data scan of %s: read %d rows%s, %.0f MiB%s, %d columns, %.0f s",
                self.source,
                self.rows,
                f" of {self.total_rows}" if self.total_rows is not None else "",
                self.bytes / MIB,
                size,
                self.columns,
                now - self._started,
            )

    def _show(self, rows: int, read: int) -> None:
        if self._bar is None:
            self._bar = _new_bar(self)
            if self._bar is None:
                self._bar_wanted = False
                return
        by_bytes = self.total_bytes is not None
        self._bar.update(read if by_bytes else rows)
        self._bar.set_postfix_str(f"{self.rows:,} rows, {self.columns} columns", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed stream
        return False


def _new_bar(progress: ReadProgress) -> tqdm[None] | None:
    """A bar on the progress's stream; ``None`` when ``tqdm`` is not installed (the scan then logs)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    by_bytes = progress.total_bytes is not None
    return tqdm(
        total=progress.total_bytes if by_bytes else progress.total_rows,
        unit="B" if by_bytes else " rows",
        unit_scale=True,
        unit_divisor=1024 if by_bytes else 1000,
        desc=f"reading {progress.source}",
        file=progress._stream,
        leave=False,
        dynamic_ncols=True,
    )
