"""Small SVG charts, written by hand.

Why not altair: it only emits a Vega-Lite spec; turning it into SVG needs vl-convert (not
installed, and a large native wheel) or a browser running vega.js (the iframe would then need
scripts and a CDN, and the page would not render offline). matplotlib is not a dependency either.
Grouped bars and stacked bars are a few rectangles, so we write them directly: the output is
static, accessible (``<title>`` on every mark) and safe (every label is escaped).
"""

from __future__ import annotations

from collections.abc import Sequence

from charter_guardrails.reporting.vocabulary import verdict_label
from markupsafe import Markup, escape

REFERENCE_COLOUR = "#9aa5b1"
CURRENT_COLOUR = "#1f6feb"
VERDICT_COLOURS = {"pass": "#2da44e", "warn": "#d4a72c", "fail": "#cf222e"}


def _fmt(value: float) -> str:
    """French number formatting: decimal comma, thin space between thousands."""
    if value == 0:
        return "0"
    if abs(value) < 1:
        text = f"{value:.3f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:,.1f}".replace(",", "\u202f").removesuffix(".0")
    return text.replace(".", ",")


def grouped_bars(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    title: str,
    reference_label: str = "référence",
    current_label: str = "observé",
    percent: bool = False,
    width: int = 560,
    height: int = 220,
) -> Markup:
    """Two bars per label (reference, current): drift histograms and group shares against the reference."""
    n = len(labels)
    if n == 0:
        return Markup("")
    left, right, top, bottom = 44, 10, 28, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([*reference, *current, 0.0]) or 1.0
    slot = plot_w / n
    bar = max(2.0, min(28.0, slot * 0.38))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        tick = peak * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end" fill="#57606a">'
            f"{escape(_fmt(tick * 100) + ' %' if percent else _fmt(tick))}</text>"
        )
    for i, label in enumerate(labels):
        x0 = left + i * slot + slot / 2 - bar
        for j, (values, colour, name) in enumerate(
            ((reference, REFERENCE_COLOUR, reference_label), (current, CURRENT_COLOUR, current_label))
        ):
            value = float(values[i]) if i < len(values) else 0.0
            h = plot_h * value / peak
            shown = _fmt(value * 100) + " %" if percent else _fmt(value)
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}">'
                f"<title>{escape(label)} — {escape(name)} : {escape(shown)}</title></rect>"
            )
        text = label if len(label) <= 14 else label[:13] + "…"
        cx = left + i * slot + slot / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{top + plot_h + 12}" font-size="9" text-anchor="end" fill="#24292f" '
            f'transform="rotate(-35 {cx:.1f} {top + plot_h + 12})">{escape(text)}</text>'
        )
    parts.append(_legend([(reference_label, REFERENCE_COLOUR), (current_label, CURRENT_COLOUR)], left, 14))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and value above went through escape()


def stacked_verdicts(days: Sequence[dict[str, object]], *, title: str, width: int = 640, height: int = 200) -> Markup:
    """One stacked bar per day (pass, warn, fail): pass rates over time."""
    if not days:
        return Markup("")
    left, right, top, bottom = 36, 10, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(int(str(d.get("total", 0))) for d in days) or 1
    slot = plot_w / len(days)
    bar = max(2.0, min(30.0, slot * 0.7))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(3):
        y = top + plot_h - plot_h * i / 2
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end" fill="#57606a">'
            f"{escape(_fmt(peak * i / 2))}</text>"
        )
    step = max(1, len(days) // 8)
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for verdict in ("pass", "warn", "fail"):
            count = int(str(day.get(verdict, 0)))
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{VERDICT_COLOURS[verdict]}">'
                f"<title>{escape(str(day.get('day')))} — {verdict_label(verdict)} : {count}</title></rect>"
            )
        if i % step == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" font-size="9" text-anchor="middle" '
                'fill="#24292f">'
                f"{escape(str(day.get('day'))[5:])}</text>"
            )
    parts.append(
        _legend(
            [
                (verdict_label("pass"), VERDICT_COLOURS["pass"]),
                (verdict_label("warn"), VERDICT_COLOURS["warn"]),
                (verdict_label("fail"), VERDICT_COLOURS["fail"]),
            ],
            left,
            14,
        )
    )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and value above went through escape()


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> str:
    out = []
    for label, colour in items:
        out.append(
            f'<rect x="{x:.1f}" y="{y - 8:.1f}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14:.1f}" y="{y + 1:.1f}" font-size="10" fill="#24292f">{escape(label)}</text>'
        )
        x += 24 + 6.5 * len(label)
    return "".join(out)
