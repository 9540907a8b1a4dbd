"""The governance view's Jinja2 environment and the one function that turns a template into a page.

The environment comes from :func:`charter_guardrails.reporting.rendering.build_environment`: the same
settings (autoescape, ``StrictUndefined``) and the same French vocabulary as the library's reports,
on the view's own templates, plus the view's filters (dates, numbers, masking) and charts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from charter_guardrails.reporting.rendering import build_environment
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

from charter_airflow.ui import charts, files
from charter_airflow.ui.security import CSRF_FIELD, actor_name, can_act, issue_csrf_token

TEMPLATES_DIR = Path(__file__).with_name("templates")
#: Our pages run no script; a strict policy keeps it so even if a value escaped the escaping.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def fmt_dt(value: str | datetime | None) -> str:
    if not value:
        return "—"
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return dt.astimezone(UTC).strftime("%d/%m/%Y %H:%M UTC")


def fmt_num(value: Any) -> str:
    """Four significant digits: the view shows rates and counts side by side, of any magnitude."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("oui" if value else "non")
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        return f"{value:,.4g}".replace(",", "\u202f").replace(".", ",") if abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def pct(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{value * 100:.1f} %".replace(".", ",")


def _mask(value: Any) -> str:
    from charter_guardrails.reporting.governance import mask_personal_values

    return mask_personal_values(str(value)) if value is not None else ""


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The view's environment (built once per process)."""
    env = build_environment(FileSystemLoader(TEMPLATES_DIR))
    env.filters.update(
        mask=_mask,
        dt=fmt_dt,
        num=fmt_num,
        pct=pct,
        tojson_pretty=lambda v: json.dumps(v, ensure_ascii=False, indent=2),
        file_name=files.file_name,
    )
    env.globals.update(grouped_bars=charts.grouped_bars, stacked_verdicts=charts.stacked_verdicts)
    return env


def base_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def page(request: Request, template: str, user: Any, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered for ``user`` (who may be ``None`` on an error page), with the view's headers."""
    context.setdefault("embedded", False)
    # A page about one use case says whether the reader may act on it; the others, whether they may act at all.
    context.setdefault("can_act", bool(user) and can_act(user))
    html = (
        environment()
        .get_template(template)
        .render(
            base=base_path(request),
            user=actor_name(user) if user else None,
            csrf_token=issue_csrf_token(user) if user else "",
            csrf_field=CSRF_FIELD,
            report_link=files.report_link,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
