"""The JSON and HTML reports of a ``personal_data`` check, written under ``<reports_dir>/<use_case>/<run>/``.

The result links them (``report_path``, ``evidence.reports``); like the ledger rows, they hold
masked examples only.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from charter_guardrails.core.results import CheckResult
from charter_guardrails.core.settings import get_settings

if TYPE_CHECKING:
    from charter_guardrails.checks.privacy.verdict import PersonalDataOutcome


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", part)[:120] or "_"


def report_dir(use_case: str, run_id: str) -> Path:
    return get_settings().reports_dir / _safe(use_case) / _safe(run_id)


def write_reports(
    outcome: PersonalDataOutcome, *, use_case: str, run_id: str, name: str | None = None
) -> dict[str, str]:
    """Write ``personal_data__<dataset>.json`` and ``.html``; link them from the result."""
    folder = report_dir(use_case, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"personal_data__{_safe(name or outcome.result.dataset or outcome.scan.source)}"
    json_path, html_path = folder / f"{stem}.json", folder / f"{stem}.html"
    document = {
        "generated_at": datetime.now(UTC).isoformat(),
        "use_case": use_case,
        "run_id": run_id,
        "result": outcome.result.to_json_dict(),
        "scan": outcome.scan.to_json_dict(),
        "columns": [c.to_json_dict() for c in outcome.columns],
    }
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    html_path.write_text(render_html(outcome, use_case=use_case, run_id=run_id), encoding="utf-8")
    outcome.reports = {"json": str(json_path), "html": str(html_path)}
    # Validated again, not model_copy'd: the evidence must still fit its model when the ledger reads it back.
    outcome.result = CheckResult.model_validate(
        {
            **outcome.result.model_dump(),
            "report_path": str(html_path),
            "evidence": {**outcome.result.evidence, "reports": dict(outcome.reports)},
        }
    )
    return outcome.reports


def render_html(outcome: PersonalDataOutcome, *, use_case: str, run_id: str) -> str:
    """A self-contained report (no script, no external asset), masked values only."""
    from charter_guardrails.reporting.privacy_report import render_privacy_report

    return render_privacy_report(outcome, use_case=use_case, run_id=run_id)
