"""The AI label of a published model version (Transparence 4): an accessible SVG badge and its JSON metadata.

Transparence 4 asks for an explicit logo that tells users a digital service is based on AI: the badge
says "Service utilisant l'IA" (``role="img"``, ``<title>``, ``<desc>``) for the service's pages;
``ai_label.json`` says the same for machines, with the badge's digest.
"""

from __future__ import annotations

import hashlib
from typing import Any

from charter_guardrails.core.engagements import engagement_by_id
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.reporting.rendering import render

LABEL_TEXT = "Service utilisant l'IA"
LABEL_SCHEMA = "charter-ai-label/1"
#: What Transparence 4 asks, as the engagements file paraphrases it.
TRANSPARENCE_4 = engagement_by_id("transparence.4").text


def badge_svg(policy: UseCasePolicy, version: int) -> str:
    """The badge of ``policy``'s model ``version`` (``templates/ai_label.svg``, every text escaped)."""
    return render(
        "ai_label.svg",
        title=LABEL_TEXT,
        desc="Ce service numérique utilise un système d'intelligence artificielle : "
        f"{policy.title} (version {version}). "
        "Étiquette de la charte pour une IA éthique de la Métropole Aix-Marseille-Provence.",
        subtitle="Charte IA éthique · Métropole AMP",
    )


def label_document(policy: UseCasePolicy, ctx: dict[str, Any], *, svg: str, files: dict[str, str]) -> dict[str, Any]:
    """The label's machine-readable metadata, from the card's context ``ctx``.

    :param files: the names of the card's files: ``markdown``, ``html`` and ``badge_svg``.
    """
    return {
        "schema": LABEL_SCHEMA,
        "label": LABEL_TEXT,
        "use_case": policy.id,
        "service": policy.title,
        "model_version": ctx["version"],
        "run_id": ctx["run_id"],
        "issued_at": ctx["generated_at"],
        "purpose": ctx["purpose"],
        "decision_support": policy.decision_support,
        "human_recourse": ctx["human_recourse"],
        "owner": ctx["owner"],
        "approved_by": ctx["approver"],
        "decision": ctx["decision"],
        "overridden_checks": sorted({o["check"] for o in ctx["overrides"]}),
        "charter": {"engagement": "transparence.4", "text": TRANSPARENCE_4, "wording": "paraphrase"},
        "engagements_satisfied": ctx["engagements_satisfied"],
        "energy": {"kwh": ctx["energy"]["kwh"], "gco2e": ctx["energy"]["gco2e"]} if ctx["energy"] else None,
        "model_card": {"markdown": files["markdown"], "html": files["html"]},
        "badge": {
            "file": files["badge_svg"],
            "sha256": hashlib.sha256(svg.encode("utf-8")).hexdigest(),
            "alt": LABEL_TEXT,
        },
    }
