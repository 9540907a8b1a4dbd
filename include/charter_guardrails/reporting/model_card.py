"""The French model card ("fiche de transparence") and the AI label of a published model version.

Transparence 3 (explain the system in plain words) and 4 ("identifier par un logo explicite les
services numériques à base d'IA"): at publish, a model version gets

- ``model_card.md`` and ``model_card.html``: purpose, legal basis, data used (columns and period),
  pseudonymisation, how the model works, metrics, fairness per group, energy and CO₂, limits,
  the human recourse channel, the approver, overrides and the charter engagements satisfied;
- ``ai_label.svg``: an accessible badge "Service utilisant l'IA" (see :mod:`.ai_label`);
- ``ai_label.json``: the label's machine-readable metadata.

Only aggregates go in (see :mod:`.card_context`). Both cards are templates: the HTML is autoescaped,
and every value placed in the Markdown goes through the Markdown escaping filters.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.reporting.ai_label import LABEL_SCHEMA, LABEL_TEXT, TRANSPARENCE_4, badge_svg, label_document
from charter_guardrails.reporting.card_context import (
    CARD_ENGAGEMENTS,
    METRIC_LABELS,
    ModelCardFacts,
    build_model_card_context,
)
from charter_guardrails.reporting.rendering import render
from charter_guardrails.reporting.vocabulary import engagement_label


@dataclass(frozen=True)
class ModelCardPaths:
    """The four files of a model card."""

    markdown: Path
    html: Path
    badge_svg: Path
    label_json: Path

    @classmethod
    def in_folder(cls, out_dir: Path) -> ModelCardPaths:
        """The four files in ``out_dir`` (created): one folder per version keeps the badge link relative."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            out_dir / "model_card.md", out_dir / "model_card.html", out_dir / "ai_label.svg", out_dir / "ai_label.json"
        )

    def to_json_dict(self) -> dict[str, str]:
        return {
            "markdown": str(self.markdown),
            "html": str(self.html),
            "badge_svg": str(self.badge_svg),
            "label_json": str(self.label_json),
        }


def render_model_card(ctx: dict[str, Any], template: str) -> str:
    """The card of context ``ctx`` (see :func:`build_model_card_context`) as ``model_card.md`` or ``.html``."""
    return render(template, c=ctx, label_text=LABEL_TEXT, transparence_4=TRANSPARENCE_4, metric_labels=METRIC_LABELS)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_model_card(policy: UseCasePolicy, facts: ModelCardFacts, *, out_dir: Path) -> ModelCardPaths:
    """Write the fiche de transparence (Markdown, HTML) and the AI label (SVG badge, JSON) of a model version.

    :param policy: the use case.
    :param facts: what the card states (:class:`ModelCardFacts`).
    :param out_dir: the folder to write into (created); one folder per version keeps the badge link relative.
    :returns: the four paths.
    """
    ctx = build_model_card_context(policy, facts)
    paths = ModelCardPaths.in_folder(out_dir)
    svg = badge_svg(policy, facts.version)
    _write_text(paths.badge_svg, svg)
    _write_text(paths.markdown, render_model_card(ctx, "model_card.md"))
    _write_text(paths.html, render_model_card(ctx, "model_card.html"))
    files = {"markdown": paths.markdown.name, "html": paths.html.name, "badge_svg": paths.badge_svg.name}
    label = label_document(policy, ctx, svg=svg, files=files)
    _write_text(paths.label_json, json.dumps(label, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return paths


__all__ = [
    "CARD_ENGAGEMENTS",
    "LABEL_SCHEMA",
    "LABEL_TEXT",
    "TRANSPARENCE_4",
    "ModelCardFacts",
    "ModelCardPaths",
    "build_model_card_context",
    "engagement_label",
    "render_model_card",
    "write_model_card",
]
