"""The one French vocabulary of every rendered output: reports, model cards, e-mails, the brief, the UI.

A verdict, a decision or a severity is spelled here once, so that the approver's brief, the model card,
the privacy report, the alert e-mail and the governance view say the same word for the same thing.
Unknown values are shown as they are: a new code appears untranslated rather than disappearing.
"""

from __future__ import annotations

from typing import Any

#: A check's verdict (``CheckResult.verdict``); ``None`` is a run or principle without any result yet.
VERDICT_LABELS: dict[str | None, str] = {
    "pass": "conforme",
    "warn": "avertissement",
    "fail": "non conforme",
    None: "aucun résultat",
}
#: Where a glyph helps (the brief is read in a form without colours), it goes before the label.
VERDICT_ICONS: dict[str, str] = {"pass": "✅", "warn": "⚠️", "fail": "❌"}

#: A gate's decision on a run, and what a human decided on a model version.
DECISION_LABELS: dict[str | None, str] = {
    "published": "publié",
    "passed": "validé",
    "approved": "approuvé",
    "overridden": "publié avec dérogation",
    "rejected": "rejeté",
    "blocked": "bloqué",
    "quarantined": "en quarantaine",
    "needs_approval": "en attente d'approbation",
    None: "en cours",
}

#: An incident's status.
STATUS_LABELS: dict[str | None, str] = {"open": "ouvert", "acknowledged": "pris en compte", "resolved": "résolu"}

#: A check's severity (``CheckResult.severity``) and an incident's severity share one scale of words.
SEVERITY_LABELS: dict[str | None, str] = {
    "info": "information",
    "warning": "attention",
    "low": "faible",
    "medium": "moyenne",
    "error": "erreur",
    "high": "élevée",
    "critical": "critique",
}

#: The kind of personal-data breach an incident reports (GDPR Art. 33).
BREACH_TYPE_LABELS: dict[str | None, str] = {
    "integrity": "atteinte à l'intégrité",
    "confidentiality": "atteinte à la confidentialité",
    "availability": "atteinte à la disponibilité",
    "gdpr_compliance": "non-conformité RGPD",
}

#: The charter's six principles, by the id used in engagement ids (``maitrise_humaine.6``).
PRINCIPLE_LABELS: dict[str | None, str] = {
    "transparence": "Transparence",
    "equite": "Équité",
    "maitrise_humaine": "Maîtrise humaine",
    "durabilite": "Durabilité",
    "surete": "Sûreté",
    "proportionnalite": "Proportionnalité",
}


def _label(labels: dict[str | None, str], value: Any) -> str:
    # Enums (Verdict, Severity...) are StrEnums: their value is the key.
    key = None if value is None else str(getattr(value, "value", value))
    return labels.get(key, "" if key is None else key)


def verdict_label(value: Any) -> str:
    """``pass`` → ``conforme``; ``None`` → ``aucun résultat``."""
    return _label(VERDICT_LABELS, value)


def verdict_with_icon(value: Any) -> str:
    """``fail`` → ``❌ non conforme``."""
    key = str(getattr(value, "value", value))
    icon = VERDICT_ICONS.get(key)
    return f"{icon} {verdict_label(value)}" if icon else verdict_label(value)


def decision_label(value: Any) -> str:
    """``blocked`` → ``bloqué``; ``None`` (no decision yet) → ``en cours``."""
    return _label(DECISION_LABELS, value)


def status_label(value: Any) -> str:
    """``acknowledged`` → ``pris en compte``."""
    return _label(STATUS_LABELS, value)


def severity_label(value: Any) -> str:
    """``critical`` → ``critique``."""
    return _label(SEVERITY_LABELS, value)


def breach_type_label(value: Any) -> str:
    """``integrity`` → ``atteinte à l'intégrité``."""
    return _label(BREACH_TYPE_LABELS, value)


def engagement_label(engagement: str) -> str:
    """``maitrise_humaine.6`` → ``Maîtrise humaine 6``."""
    principle, _, number = engagement.partition(".")
    return f"{PRINCIPLE_LABELS.get(principle, principle)} {number}".strip()


#: The filters every template gets (see :mod:`charter_guardrails.reporting.rendering`).
FILTERS = {
    "verdict_label": verdict_label,
    "verdict_with_icon": verdict_with_icon,
    "decision_label": decision_label,
    "status_label": status_label,
    "severity_label": severity_label,
    "breach_type_label": breach_type_label,
    "engagement_label": engagement_label,
}
