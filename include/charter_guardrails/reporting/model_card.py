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
from datetime import datetime
from pathlib import Path
from typing import Any

from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.results import CheckResult
from charter_guardrails.refresh.energy import EnergyMeasurement
from charter_guardrails.reporting.ai_label import LABEL_SCHEMA, LABEL_TEXT, TRANSPARENCE_4, badge_svg, label_document
from charter_guardrails.reporting.card_context import CARD_ENGAGEMENTS, METRIC_LABELS, build_model_card_context
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


def write_model_card(
    policy: UseCasePolicy,
    *,
    version: int,
    run_id: str | None,
    metrics: dict[str, Any],
    fairness: Any,
    energy: EnergyMeasurement | dict[str, Any] | None,
    approver: str | None,
    decision: str,
    overrides: list[dict[str, Any]],
    results: list[CheckResult | dict[str, Any]],
    data_period: dict[str, Any],
    out_dir: Path,
    generated_at: datetime | None = None,
) -> ModelCardPaths:
    """Write the fiche de transparence (Markdown, HTML) and the AI label (SVG badge, JSON) of a model version.

    :param policy: the use case.
    :param version: the model version number (``ModelVersion.version``).
    :param run_id: the Airflow run that produced it.
    :param metrics: named numbers, flat or nested (e.g. candidate, production and baseline scores, gain).
    :param fairness: the fairness table (rows of :meth:`EvaluationReport.fairness_table`), the
        :class:`~charter_guardrails.refresh.evaluation.EvaluationReport`, the ``fairness`` CheckResult or its
        evidence dict (its ``table``); ``None`` or ``{}`` when there is none.
    :param energy: the training's :class:`~charter_guardrails.refresh.training.EnergyMeasurement`, its JSON dict,
        or ``None``/``{}`` if unmeasured.
    :param approver: who approved (name or e-mail), ``None`` when not recorded.
    :param decision: ``published``, ``approved``, ``overridden``… (shown in French).
    :param overrides: ``{check, justification, actor}`` per overridden guardrail (``checks: [...]`` for several).
    :param results: every :class:`CheckResult` of the run (or their JSON dicts); their engagements
        are listed with a status (satisfied, satisfied with an override, not satisfied).
    :param data_period: ``{"column", "start", "end"}`` (ISO 8601), e.g. :attr:`TrainedModel.data_period`.
    :param out_dir: the folder to write into (created); one folder per version keeps the badge link relative.
    :param generated_at: the card's timestamp (UTC now by default).
    :returns: the four paths.
    """
    ctx = build_model_card_context(
        policy,
        version=version,
        run_id=run_id,
        metrics=metrics,
        fairness=fairness,
        energy=energy,
        approver=approver,
        decision=decision,
        overrides=overrides,
        results=results,
        data_period=data_period,
        generated_at=generated_at,
    )
    paths = ModelCardPaths.in_folder(out_dir)
    svg = badge_svg(policy, version)
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
    "ModelCardPaths",
    "build_model_card_context",
    "engagement_label",
    "render_model_card",
    "write_model_card",
]
