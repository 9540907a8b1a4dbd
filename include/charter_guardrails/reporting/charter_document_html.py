"""The committee's charter document as one standalone HTML page (``templates/charter_document.html``).

The page has inline CSS, no script and nothing to fetch: it is shown on screen, downloaded as HTML and
laid out as an A4 landscape PDF (:mod:`~charter_guardrails.reporting.report_files`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from charter_guardrails.reporting.charter_document import engagement_label, status_reasons
from charter_guardrails.reporting.charter_report import (
    STATUS_ATTESTED,
    STATUS_COMPLIANT,
    STATUS_GAPS,
    STATUS_NOT_EVALUATED,
    STATUSES,
)
from charter_guardrails.reporting.rendering import environment, fmt_date
from charter_guardrails.reporting.scrubbing import mask_personal_values
from charter_guardrails.reporting.vocabulary import (
    BREACH_TYPE_LABELS,
    DECISION_LABELS,
    SEVERITY_LABELS,
    STATUS_LABELS,
    VERDICT_LABELS,
)

TEMPLATE = "charter_document.html"
#: The colour class of each status in the HTML.
STATUS_CLASSES = {STATUS_COMPLIANT: "ok", STATUS_GAPS: "fail", STATUS_ATTESTED: "attest", STATUS_NOT_EVALUATED: "none"}
_KIND_LABELS = {"automated": "automatisé", "organisational": "organisationnel", "mixed": "mixte"}
#: The evidence counts the engagements table shows when the engagement's sources give them.
_OTHER_EVIDENCE = (
    ("approvals", "décisions humaines"),
    ("suspensions", "suspensions"),
    ("resumptions", "reprises"),
    ("incidents", "incidents"),
    ("incidents_open", "incidents non résolus"),
    ("audit_events", "événements d'audit"),
    ("audit_chain_ok", "chaîne d'audit vérifiée"),
    ("model_versions", "versions de modèle"),
    ("model_cards", "fiches modèle"),
    ("ai_labels", "étiquettes IA"),
    ("scored_batches", "lots notés par le modèle en service"),
    ("not_scored_batches", "lots acceptés non notés"),
    ("max_prediction_drift", "dérive maximale des prédictions (Jensen-Shannon)"),
)


def _fmt_dt(value: Any) -> str:
    """An ISO date-time as ``dd/mm/yyyy HH:MM UTC``, an ISO date as ``dd/mm/yyyy``; ``—`` when there is none."""
    if not value:
        return "—"
    if isinstance(value, str) and len(value) == 10:
        return fmt_date(value)
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).strftime("%d/%m/%Y %H:%M UTC")


def _fmt_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    return str(value)


def _attestation_line(engagement: Mapping[str, Any]) -> str | None:
    """The engagement's attestation in one line; ``None`` for an engagement that needs none."""
    if not engagement["needs_attestation"]:
        return None
    a = engagement["attestation"]
    if a is None:
        return "attestation manquante"
    state = "valide" if a["valid"] else "expirée"
    return (
        f"attestation {state} par {mask_personal_values(a['attested_by'])} le {_fmt_dt(a['attested_on'])}, "
        f"jusqu'au {_fmt_dt(a['expires_on'])} ({a['document_ref']})"
    )


def _results_line(ev: Mapping[str, Any]) -> str:
    if not ev["results"]:
        return "aucun résultat"
    return (
        f"{ev['results']} ({VERDICT_LABELS['pass']} : {ev['pass']}, {VERDICT_LABELS['warn']} : {ev['warn']}, "
        f"{VERDICT_LABELS['fail']} : {ev['fail']}) sur {ev['runs']} exécution(s)"
    )


def _engagement_row(e: Mapping[str, Any]) -> dict[str, Any]:
    """What one row of the engagements table shows, from the report's engagement as it is."""
    ev = e["evidence"]
    last = ev["last_run"]
    other = [f"dérogations : {_fmt_value(ev['overrides'])}"]
    other += [f"{label} : {_fmt_value(ev[key])}" for key, label in _OTHER_EVIDENCE if key in ev]
    return {
        "id": e["id"],
        "label": engagement_label(e),
        "kind": _KIND_LABELS[e["kind"]],
        "text": e["text"],
        "evidence_kind": e["evidence_kind"],
        "controls": ", ".join(e["controls"]) or "—",
        "sources": ", ".join(e["sources"]),
        "results": _results_line(ev),
        "last_run": (
            f"{_fmt_dt(last['at'])} · {last['use_case']} · {VERDICT_LABELS.get(last['verdict'], last['verdict'])}"
            if last
            else "—"
        ),
        "failures": [
            f"{f['use_case']} · {f['check']} : {mask_personal_values(f['summary'])}" for f in ev["failures"][-5:]
        ],
        "other": other,
        "attestation": _attestation_line(e),
        "status": e["status"],
        "status_class": STATUS_CLASSES[e["status"]],
        "status_reasons": status_reasons(e),
    }


def html_context(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The template's context: the document, and each engagement as the row it shows, grouped by principle."""
    groups: list[dict[str, Any]] = []
    for e in doc["engagements"]:
        if not groups or groups[-1]["principle"] != e["principle"]:
            groups.append({"principle": e["principle"], "label": e["principle_label"], "rows": []})
        groups[-1]["rows"].append(_engagement_row(e))
    return {
        "doc": doc,
        "statuses": list(STATUSES),
        "groups": groups,
        "dt": _fmt_dt,
        "value": _fmt_value,
        "status_classes": STATUS_CLASSES,
        "labels": {
            "decision": DECISION_LABELS,
            "breach": BREACH_TYPE_LABELS,
            "severity": SEVERITY_LABELS,
            "incident_status": STATUS_LABELS,
        },
    }


def render_html(doc: Mapping[str, Any]) -> str:
    """The document as one standalone HTML page: inline CSS, no script, nothing to fetch."""
    return environment().get_template(TEMPLATE).render(**html_context(doc))


__all__ = ["STATUS_CLASSES", "TEMPLATE", "html_context", "render_html"]
