"""The committee's charter document as files: HTML, JSON and PDF, each signed beside it (``<file>.sig.json``).

The HTML comes from :func:`~charter_guardrails.reporting.charter_document_html.render_html`; the PDF is
that HTML laid out by WeasyPrint on A4 landscape pages, with a URL fetcher that refuses anything but
``data:`` URLs. Files are written through a temporary file and renamed into place, and writers of one
folder (the CLI, the view's export) take turns on its lock file, so that each file stays next to its
own signature.
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from charter_guardrails.core import keys
from charter_guardrails.core.errors import ConfigError, ReportWriteError
from charter_guardrails.core.settings import get_settings
from charter_guardrails.reporting.charter_document_html import render_html
from charter_guardrails.reporting.report_signing import sign_report, write_atomic

FORMATS = ("html", "json", "pdf")
#: The name of every file :func:`write_report` writes, signatures included; nothing else has such a name.
FILE_NAME = re.compile(r"rapport-charte-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.(?:html|json|pdf)(?:\.sig\.json)?")
_LOCK_FILE = ".rapport-charte.lock"


def default_folder() -> Path:
    """``<CHARTER_REPORTS_DIR>/charte``: where the CLI and the view write the document by default."""
    return get_settings().reports_dir / "charte"


def export_name(doc: Mapping[str, Any]) -> str:
    """``rapport-charte-2026-01-01-2026-07-01``: the file name of the document, without its extension."""
    period = doc["period"]
    return f"rapport-charte-{period['start'][:10]}-{period['end'][:10]}"


def is_report_file_name(name: str) -> bool:
    """Whether ``name`` is the name of a file :func:`write_report` writes (a bare name, no folder)."""
    return FILE_NAME.fullmatch(name) is not None


def render_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


class _ProgressHandler(logging.Handler):
    def __init__(self, progress: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self._progress(record.getMessage())


def render_pdf(html: str, *, progress: Callable[[str], None] | None = None) -> bytes:
    """``html`` laid out by WeasyPrint as a PDF (the template's ``@page``: A4 landscape).

    The URL fetcher accepts ``data:`` URLs only and any other URL stops the rendering: the PDF is made
    of the HTML alone, nothing is fetched. ``progress`` receives WeasyPrint's steps.
    """
    try:
        from weasyprint import HTML, PROGRESS_LOGGER
        from weasyprint.urls import URLFetcher
    except (ImportError, OSError) as exc:
        raise ConfigError(
            f"cannot render the PDF: WeasyPrint or its Pango library is missing ({exc}); "
            "install the pinned requirements (`make install`) and Debian's libpango-1.0-0"
        ) from exc
    handler = _ProgressHandler(progress) if progress else None
    previous_level = PROGRESS_LOGGER.level
    if handler:
        PROGRESS_LOGGER.addHandler(handler)
        PROGRESS_LOGGER.setLevel(logging.INFO)
    try:
        fetcher = URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
        document = HTML(string=html, base_url=None, url_fetcher=fetcher).render()
        if progress:
            progress(f"{len(document.pages)} pages laid out")
        pdf = document.write_pdf()
    finally:
        if handler:
            PROGRESS_LOGGER.removeHandler(handler)
            PROGRESS_LOGGER.setLevel(previous_level)
    if not isinstance(pdf, bytes):
        raise ReportWriteError("WeasyPrint returned no PDF")
    return pdf


@contextmanager
def _folder_lock(out_dir: Path) -> Iterator[None]:
    """``out_dir`` created if needed, and held alone until the block ends (an exclusive lock on its lock file)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle = (out_dir / _LOCK_FILE).open("a")
    except OSError as exc:
        raise ReportWriteError(f"cannot write into {out_dir}: {exc.strerror or exc}") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _wanted(formats: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(formats))
    if unknown := sorted(set(wanted) - set(FORMATS)):
        raise ConfigError(f"unknown report format(s) {unknown}; use {', '.join(FORMATS)}")
    if not wanted:
        raise ConfigError(f"no report format asked for; use {', '.join(FORMATS)}")
    return wanted


def _write_files(
    doc: Mapping[str, Any], out_dir: Path, wanted: list[str], progress: Callable[[str], None] | None, sign: bool
) -> dict[str, tuple[Path, bytes]]:
    """Each format's path and bytes, written (and signed) while the folder is held."""
    name = export_name(doc)
    html = render_html(doc) if {"html", "pdf"} & set(wanted) else ""
    data: dict[str, bytes] = {}
    for fmt in wanted:
        if fmt == "html":
            data[fmt] = html.encode("utf-8")
        elif fmt == "json":
            data[fmt] = render_json(doc).encode("utf-8")
        else:
            if progress:
                progress(f"rendering {name}.pdf with WeasyPrint")
            data[fmt] = render_pdf(html, progress=progress)
    written: dict[str, tuple[Path, bytes]] = {}
    with _folder_lock(out_dir):
        for fmt in wanted:
            target = out_dir / f"{name}.{fmt}"
            write_atomic(target, data[fmt])
            if sign:
                sign_report(target, doc["chain_head"])
            written[fmt] = (target, data[fmt])
    return written


def write_report(
    doc: Mapping[str, Any],
    out_dir: Path,
    formats: Iterable[str] = FORMATS,
    *,
    progress: Callable[[str], None] | None = None,
    sign: bool = True,
) -> dict[str, Path]:
    """Write the document in ``formats`` (``html``, ``json``, ``pdf``) into ``out_dir``, each signed beside it.

    Returns the path of each format written; its signature is ``<path>.sig.json``.
    """
    wanted = _wanted(formats)
    if sign:
        keys.load_signing_key()  # a missing key is a config error before anything is rendered or written
    return {fmt: path for fmt, (path, _) in _write_files(doc, out_dir, wanted, progress, sign).items()}


def write_signed_pdf(doc: Mapping[str, Any], out_dir: Path) -> tuple[Path, bytes]:
    """Write the document as a signed PDF into ``out_dir``; its path and the bytes its signature covers."""
    keys.load_signing_key()
    return _write_files(doc, out_dir, ["pdf"], None, True)["pdf"]


__all__ = [
    "FILE_NAME",
    "FORMATS",
    "default_folder",
    "export_name",
    "is_report_file_name",
    "render_json",
    "render_pdf",
    "write_report",
    "write_signed_pdf",
]
