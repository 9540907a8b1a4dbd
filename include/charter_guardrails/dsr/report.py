"""The DPO's report of a data-subject request: JSON and HTML under ``<reports>/dsr/<request id>/``, each signed.

``access.json`` / ``access.html`` answer a search, ``erasure.json`` / ``erasure.html`` an erasure; the HTML is
``reporting/templates/dsr_report.html`` rendered by :func:`charter_guardrails.reporting.rendering.render`
(autoescaped). Each file gets its Ed25519 signature beside it (``<file>.sig.json``,
:func:`~charter_guardrails.reporting.report_signing.sign_report`). The report holds the request id, the type
and keyed hash of the identifier, and per place the use case, dataset, path, rows and columns: never the value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from charter_guardrails.core.settings import get_settings
from charter_guardrails.dsr.find import check_request_id
from charter_guardrails.reporting.rendering import fmt_date, render
from charter_guardrails.reporting.report_signing import sign_report, write_atomic

#: How the report names each kind of place.
KINDS = {
    "raw": "fichier déclaré",
    "delivery": "autre fichier du dossier de données",
    "accepted": "lot accepté",
    "quarantine": "lot en quarantaine",
    "working_copy": "copie de travail pseudonymisée",
}


def report_folder(request_id: str) -> Path:
    return get_settings().reports_dir / "dsr" / check_request_id(request_id)


def write_dsr_report(kind: Literal["access", "erasure"], data: dict[str, Any]) -> list[Path]:
    """Write ``<kind>.json`` and ``<kind>.html`` for the request ``data`` names, each signed; return the files."""
    folder = report_folder(str(data["request_id"]))
    folder.mkdir(parents=True, exist_ok=True)
    when = str(data.get("erased_at") or data.get("searched_at") or "")
    html = render("dsr_report.html", r=data, erasure=kind == "erasure", kinds=KINDS, when=f"{fmt_date(when)} ({when})")
    files = {
        folder / f"{kind}.json": json.dumps(data, ensure_ascii=False, indent=2) + "\n",
        folder / f"{kind}.html": html,
    }
    for path, text in files.items():
        write_atomic(path, text.encode("utf-8"))
        sign_report(path)
    return list(files)
