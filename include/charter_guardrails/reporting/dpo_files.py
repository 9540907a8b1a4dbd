"""The DPO's documents as files: HTML, JSON and PDF, each signed beside it (``<file>.sig.json``).

The register entry and the AIPD draft are laid out by one template each (``templates/dpo_register.html``,
``templates/dpo_aipd.html``, sharing ``templates/_dpo_fields.html``), as standalone pages with inline CSS and
nothing to fetch; the PDF is that page laid out by :func:`~charter_guardrails.reporting.report_files.render_pdf`,
and every file is signed like the charter report's (:func:`~charter_guardrails.reporting.report_signing.sign_report`)
with the audit chain's head the document was built on. Files are named after the document and the use case
(``registre-citizen_requests.pdf``, ``aipd-citizen_requests.json``) in ``<CHARTER_REPORTS_DIR>/dpo``; the
governance view serves only names of that shape, from that folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from charter_guardrails.core import keys
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.settings import get_settings
from charter_guardrails.reporting.rendering import environment
from charter_guardrails.reporting.report_files import FORMATS, _folder_lock, render_pdf
from charter_guardrails.reporting.report_signing import sign_report, write_atomic

#: The documents, by the ``kind`` their JSON carries: the file-name prefix and the template.
DOCUMENTS = {"registre": "dpo_register.html", "aipd": "dpo_aipd.html"}
FILE_NAME = re.compile(r"(?:registre|aipd)-[a-z][a-z0-9_]{0,62}\.(?:html|json|pdf)(?:\.sig\.json)?")


def default_folder() -> Path:
    """``<CHARTER_REPORTS_DIR>/dpo``: where the CLI and the view write the DPO's documents."""
    return get_settings().reports_dir / "dpo"


def file_stem(doc: Mapping[str, Any]) -> str:
    """``registre-citizen_requests``: the file name of the document, without its extension."""
    return f"{doc['kind']}-{doc['use_case']}"


def is_dpo_file_name(name: str) -> bool:
    """Whether ``name`` is the bare name of a file :func:`write_dpo_document` writes (signatures included)."""
    return FILE_NAME.fullmatch(name) is not None


def render_html(doc: Mapping[str, Any]) -> str:
    """The document as one standalone HTML page: inline CSS, no script, nothing to fetch."""
    return environment().get_template(DOCUMENTS[doc["kind"]]).render(doc=doc)


def render_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def render(doc: Mapping[str, Any], fmt: str) -> bytes:
    """The document's bytes in ``fmt`` (``html``, ``json`` or ``pdf``)."""
    if fmt == "json":
        return render_json(doc).encode("utf-8")
    html = render_html(doc)
    return html.encode("utf-8") if fmt == "html" else render_pdf(html)


def wanted_formats(formats: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(formats))
    if unknown := sorted(set(wanted) - set(FORMATS)):
        raise ConfigError(f"unknown document format(s) {unknown}; use {', '.join(FORMATS)}")
    if not wanted:
        raise ConfigError(f"no document format asked for; use {', '.join(FORMATS)}")
    return wanted


def write_dpo_document(
    doc: Mapping[str, Any],
    out_dir: Path,
    formats: Iterable[str] = FORMATS,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Write ``doc`` in ``formats`` into ``out_dir``, each file signed beside it; the path of each format."""
    wanted = wanted_formats(formats)
    keys.load_signing_key()  # a missing key is a config error before anything is rendered or written
    stem = file_stem(doc)
    data: dict[str, bytes] = {}
    for fmt in wanted:
        if progress and fmt == "pdf":
            progress(f"rendering {stem}.pdf with WeasyPrint")
        data[fmt] = render(doc, fmt)
    written: dict[str, Path] = {}
    # The charter report's folder lock: the CLI and the view take turns, so each file stays next to its signature.
    with _folder_lock(out_dir):
        for fmt in wanted:
            target = out_dir / f"{stem}.{fmt}"
            write_atomic(target, data[fmt])
            sign_report(target, doc["chain_head"])
            written[fmt] = target
    return written


def written_files(folder: Path | None = None) -> dict[str, list[str]]:
    """The documents' files present in ``folder`` (default :func:`default_folder`), by stem; names only."""
    root = folder or default_folder()
    if not root.is_dir():
        return {}
    found: dict[str, list[str]] = {}
    for path in sorted(root.iterdir()):
        if path.is_file() and is_dpo_file_name(path.name):
            found.setdefault(path.name.split(".", 1)[0], []).append(path.name)
    return found


__all__ = [
    "DOCUMENTS",
    "FILE_NAME",
    "default_folder",
    "file_stem",
    "is_dpo_file_name",
    "render",
    "render_html",
    "render_json",
    "wanted_formats",
    "write_dpo_document",
    "written_files",
]
