"""The fields of the DPO's documents: where each value comes from, and what only a person can fill.

Both documents (:mod:`~charter_guardrails.reporting.dpo_register`, :mod:`~charter_guardrails.reporting.dpo_aipd`)
are lists of sections of fields, and every field says its origin in the JSON, so that a reader (and the tests)
can check it:

- taken from the policy: ``{"source": "datasets[0].retention.days", "value": 365}``; the value is the policy's,
  as ``model_dump(mode="json")`` gives it, under that key path;
- declared nowhere: ``{"source": "processing.recipients", "missing": true, "value": null, "to_complete_by": ...}``:
  the document never invents what the policy does not say;
- only a person can fill it (likelihood, severity, the DPO's opinion): ``{"human_only": true, "value": null,
  "to_complete_by": "le DPO"}``;
- what the software does (``"origin": "software"``) or what the ledger recorded (``"origin": "ledger"``: counts
  and verdicts, never a personal value).

``display`` is the French text the HTML shows; the JSON keeps the value as the policy has it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from charter_guardrails.reporting.vocabulary import BREACH_TYPE_LABELS, SEVERITY_LABELS, VERDICT_LABELS

#: What a human-only or missing field shows, before who completes it.
TO_COMPLETE = "à compléter par"
ORIGIN_SOFTWARE = "software"
ORIGIN_LEDGER = "ledger"
_KEY = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

LEGAL_BASIS_LABELS = {
    "consent": "consentement (art. 6-1-a)",
    "contract": "exécution d'un contrat (art. 6-1-b)",
    "legal_obligation": "obligation légale (art. 6-1-c)",
    "vital_interests": "sauvegarde des intérêts vitaux (art. 6-1-d)",
    "public_task": "mission d'intérêt public (art. 6-1-e)",
    "legitimate_interests": "intérêts légitimes (art. 6-1-f)",
}
#: Value labels the documents show, whatever key holds them.
VALUE_LABELS: dict[str, str] = {
    **LEGAL_BASIS_LABELS,
    "internal_service": "service interne",
    "processor": "sous-traitant (art. 28)",
    "third_party": "tiers",
    "adequacy_decision": "décision d'adéquation (art. 45)",
    "standard_contractual_clauses": "clauses contractuelles types (art. 46)",
    "binding_corporate_rules": "règles d'entreprise contraignantes (art. 47)",
    "derogation": "dérogation (art. 49)",
    "indirect_identifier": "identifiant indirect",
    "direct_identifier": "identifiant direct",
    "contact": "coordonnées",
    "location": "localisation",
    "demographic": "donnée démographique",
    "free_text": "texte libre",
    "special_category": "catégorie particulière (art. 9)",
    "internal": "développé en interne",
    "external": "fourni par un prestataire",
    "routine": "tâche routinière",
    "decision_support": "aide à la décision",
    "training": "entraînement",
    "inference": "inférence",
    "reference": "référence",
}
_KEY_LABELS = {
    "name": "nom",
    "email": "courriel",
    "role": "fonction",
    "category": "catégorie",
    "purpose": "finalité",
    "country": "pays",
    "recipient": "destinataire",
    "safeguard": "garantie",
    "documentation": "documentation",
    "processor": "sous-traitant",
    "contract_ref": "contrat",
    "art28_clauses": "clauses de l'art. 28",
    "signed_on": "signé le",
    "compliance_commitment": "engagement de conformité",
    "contact": "contact",
    "organisation": "organisme",
    "representative": "représentant",
    "address": "adresse",
}


def resolve(tree: Any, path: str) -> Any:
    """The value under ``path`` (``datasets[0].retention.days``) in a JSON tree; ``KeyError`` when absent."""
    value = tree
    for key, index in _KEY.findall(path):
        if key:
            if not isinstance(value, Mapping) or key not in value:
                raise KeyError(path)
            value = value[key]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(path)
            value = value[int(index)]
    return value


def display(value: Any) -> str:
    """``value`` in French words: labels for the policy's enums, ``oui``/``non``, ``clé : valeur`` for mappings."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, str):
        return VALUE_LABELS.get(value, value)
    if isinstance(value, int | float):
        return f"{value:,}".replace(",", "\u202f") if isinstance(value, int) else str(value).replace(".", ",")
    if isinstance(value, Mapping):
        parts = [f"{_KEY_LABELS.get(str(k), str(k))} : {display(v)}" for k, v in value.items() if v is not None]
        return " ; ".join(parts) or "—"
    if isinstance(value, list | tuple):
        return ", ".join(display(v) for v in value) if value else "aucun (déclaré vide)"
    return str(value)


def human_only(label: str, who: str, hint: str | None = None) -> dict[str, Any]:
    """A field that only a person can fill: marked, never given a value."""
    field = {"label": label, "human_only": True, "value": None, "to_complete_by": who}
    field["display"] = f"{TO_COMPLETE} {who}"
    if hint:
        field["hint"] = hint
    return field


def missing(label: str, path: str, who: str = "le responsable du traitement") -> dict[str, Any]:
    """A field the policy does not declare: reported as missing with the key that would declare it."""
    return {
        "label": label,
        "source": path,
        "missing": True,
        "value": None,
        "to_complete_by": who,
        "display": f"non déclaré — {TO_COMPLETE} {who} (clé « {path} » de la politique)",
    }


def policy_field(policy: Mapping[str, Any], label: str, path: str, *, text: str | None = None) -> dict[str, Any]:
    """The policy's value under ``path``; a missing field when it is not declared (``None``)."""
    value = resolve(policy, path)
    if value is None:
        return missing(label, path)
    return {"label": label, "source": path, "value": value, "display": text or display(value)}


def policy_items(policy: Mapping[str, Any], label: str, path: str) -> list[dict[str, Any]]:
    """One field per item of the list under ``path``; one field when it is declared empty; missing when undeclared."""
    value = resolve(policy, path)
    if value is None:
        return [missing(label, path)]
    if not value:
        return [{"label": label, "source": path, "value": [], "display": "aucun (déclaré vide)"}]
    return [
        {"label": f"{label} {i + 1}", "source": f"{path}[{i}]", "value": item, "display": display(item)}
        for i, item in enumerate(value)
    ]


def software(label: str, text: str, **facts: Any) -> dict[str, Any]:
    """What the software does, said from its code and its configuration (never a hope)."""
    return {"label": label, "origin": ORIGIN_SOFTWARE, "value": text, "display": text, **facts}


def ledger(label: str, value: Any, text: str) -> dict[str, Any]:
    """What the ledger recorded: counts and verdicts only."""
    return {"label": label, "origin": ORIGIN_LEDGER, "value": value, "display": text}


def section(section_id: str, title: str, fields: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": section_id, "title": title, **extra, "fields": fields}


def walk_fields(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every field of a document, its sections and sub-sections included."""
    found: list[dict[str, Any]] = []
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if "label" in node and "display" in node and "value" in node:
                found.append(dict(node))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def completeness(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The keys the policy still has to declare, and how many fields a person has to fill."""
    fields = walk_fields(doc)
    return {
        "missing": sorted({f["source"] for f in fields if f.get("missing")}),
        "human_only": sum(1 for f in fields if f.get("human_only")),
    }


def counts_text(counts: Mapping[str, int], labels: Mapping[str | None, str] = VERDICT_LABELS) -> str:
    """``conforme : 3, non conforme : 1``; ``aucun`` when there is nothing."""
    parts = [f"{labels.get(k, k)} : {v}" for k, v in counts.items() if v]
    return ", ".join(parts) or "aucun"


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")


__all__ = [
    "BREACH_TYPE_LABELS",
    "ORIGIN_LEDGER",
    "ORIGIN_SOFTWARE",
    "SEVERITY_LABELS",
    "TO_COMPLETE",
    "completeness",
    "counts_text",
    "display",
    "human_only",
    "ledger",
    "missing",
    "now_iso",
    "policy_field",
    "policy_items",
    "resolve",
    "section",
    "software",
    "walk_fields",
]
