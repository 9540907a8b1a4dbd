"""One way to render: a Jinja2 environment on template files, with the French vocabulary as filters.

Every HTML, Markdown and plain-text output of the library (model card, privacy report, alert e-mail,
approver's brief) is a template under ``reporting/templates/`` rendered by :func:`render`; the
governance view builds its own environment with :func:`build_environment` on its own template folder,
so both share the settings and the vocabulary.

- ``.html``, ``.xml`` and ``.svg`` templates are autoescaped: a value cannot become markup.
- Markdown is not HTML, so ``.md`` templates pass every value through the ``md`` filter (a table cell or
  a line of text) or ``md_code`` (inline code): a value cannot break a table, open a code span, plant
  a link or an image, or insert raw HTML.
- ``StrictUndefined``: a variable missing from the context raises instead of rendering as nothing.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from charter_guardrails.reporting import vocabulary

TEMPLATES_DIR = Path(__file__).with_name("templates")

#: Characters that Markdown reads as syntax in a line or a table cell; a backslash makes each literal.
_MD_SPECIAL = re.compile(r"([\\`|\[\]])")
_BACKTICKS = re.compile(r"`+")


def fmt_number(value: Any, digits: int = 4) -> str:
    """A number the French way (decimal comma, thin space between thousands); ``None`` → ``—``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        if value != 0 and abs(value) < 10**-digits:
            return f"{value:.3g}".replace(".", ",")  # tiny energies stay readable instead of 0,0000
        return f"{value:.{digits}f}".replace(".", ",")
    return str(value)


def fmt_date(value: str | None) -> str:
    """An ISO 8601 date as ``dd/mm/yyyy``; ``inconnue`` when there is none."""
    if not value:
        return "inconnue"
    try:
        return datetime.fromisoformat(value).strftime("%d/%m/%Y")
    except ValueError:
        return value


def md_cell(value: Any) -> str:
    """Text safe in a Markdown line or table cell.

    Newlines become spaces (a row stays one row); ``\\``, backticks, ``|``, ``[`` and ``]`` are
    backslash-escaped (no code span, no new cell, no link or image); ``&``, ``<`` and ``>`` become
    entities (no raw HTML, no autolink). Numbers are formatted like :func:`fmt_number`.
    """
    text = fmt_number(value) if not isinstance(value, str) else value
    text = " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_code(value: Any) -> str:
    """``value`` as inline code, whatever backticks it holds, safe in a table cell.

    The fence is one backtick longer than the longest run inside (CommonMark), and ``|`` is escaped,
    which GitHub's tables read as a literal pipe even inside code.
    """
    text = " ".join(str(value).splitlines()).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_fence(text: str, info: str = "") -> str:
    """A fenced code block around ``text``, whose fence no line of ``text`` can close."""
    fence = "`" * max(3, max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def build_environment(loader: BaseLoader) -> Environment:
    """The environment settings every renderer shares, on ``loader``'s templates."""
    env = Environment(
        loader=loader,
        autoescape=select_autoescape(["html", "htm", "xml", "svg"], default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(vocabulary.FILTERS)
    env.filters.update(num=fmt_number, date=fmt_date, md=md_cell, md_code=md_code, md_fence=md_fence)
    return env


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The library's environment, on ``reporting/templates/`` (built once)."""
    return build_environment(FileSystemLoader(TEMPLATES_DIR))


def render(template_name: str, **context: Any) -> str:
    """Render ``reporting/templates/<template_name>`` with ``context``.

    :raises jinja2.UndefinedError: when the template uses a variable ``context`` does not give.
    :raises jinja2.TemplateNotFound: when there is no such template.
    """
    return environment().get_template(template_name).render(**context)


__all__ = [
    "TEMPLATES_DIR",
    "build_environment",
    "environment",
    "fmt_date",
    "fmt_number",
    "md_cell",
    "md_code",
    "render",
]
