"""What an incident alert says: a French e-mail and a JSON webhook body.

Both are built from the outbox row's payload (the Art. 33 fields, see
:func:`charter_guardrails.incidents.incident.incident_payload`), which never holds a raw personal value:
facts are chunk numbers, byte and line ranges, digests and counts.
Both carry the row's idempotency key, so a receiver can drop a duplicate delivery.
The e-mail's parts are the templates ``incident_alert.txt`` and ``incident_alert.html`` (autoescaped);
the webhook body stays JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from charter_guardrails.reporting.rendering import render
from charter_guardrails.reporting.vocabulary import breach_type_label, severity_label

#: Header that carries the idempotency key (e-mail and webhook).
IDEMPOTENCY_HEADER = "X-Idempotency-Key"


@dataclass(frozen=True)
class Alert:
    """One outbox row to deliver, detached from the database session."""

    outbox_id: int
    incident_id: int
    channel: str
    recipient: str
    idempotency_key: str
    payload: dict[str, Any]
    attempt: int


def subject(alert: Alert) -> str:
    p = alert.payload
    number, title = p.get("incident_id", alert.incident_id), p.get("title", "incident de sécurité")
    return f"[Charte IA – Sûreté] Incident n°{number} : {title}"


def _fields(alert: Alert) -> list[tuple[str, str]]:
    p = alert.payload
    facts = p.get("facts") or {}
    return [
        (
            "Incident",
            f"n°{p.get('incident_id', alert.incident_id)} (gravité : {severity_label(p.get('severity', '-'))})",
        ),
        ("Détecté le (UTC)", str(p.get("detected_at", "-"))),
        ("Notification à la CNIL avant (art. 33(1), 72 h)", str(p.get("notify_deadline", "-"))),
        ("Type de violation", breach_type_label(str(p.get("breach_type")))),
        ("Usage et jeu de données", f"{p.get('use_case', '-')} / {p.get('dataset') or '-'}"),
        ("Exécution", str(p.get("run_id") or "-")),
        ("Nature (art. 33(3)(a))", str(p.get("nature", "-"))),
        ("Faits", _facts_text(facts)),
        ("Catégories de personnes concernées", ", ".join(p.get("data_subject_categories") or []) or "aucune déclarée"),
        (
            "Nombre approximatif d'enregistrements",
            str(p.get("approx_records") if p.get("approx_records") is not None else "inconnu"),
        ),
        ("Conséquences probables (art. 33(3)(c))", str(p.get("likely_consequences", "-"))),
        ("Mesures prises (art. 33(3)(d))", "; ".join(p.get("measures_taken") or []) or "-"),
        ("Contact DPO (art. 33(3)(b))", str(p.get("dpo_contact", "-"))),
    ]


#: The outcome of an integrity verification, in French.
_OUTCOME_LABELS = {
    "intact": "fichier intact",
    "data_changed": "données modifiées",
    "manifest_edited": "manifeste modifié",
    "unknown_key": "manifeste signé par une clé inconnue",
    "key_missing": "aucune clé publique de confiance",
    "no_manifest": "aucun manifeste enregistré",
}


def _column_fact(column: dict[str, Any]) -> str:
    """One column of a personal-data incident: its name, the forbidden kinds of data and how many rows hold them."""
    kinds = "/".join(str(k) for k in column.get("forbidden") or []) or "aucune donnée interdite"
    rows = column.get("forbidden_rows")
    return f"colonne {column.get('column')} : {kinds}" + (f" ({rows} ligne(s))" if rows else "")


def _facts_text(facts: dict[str, Any]) -> str:
    parts = []
    if facts.get("outcome"):
        outcome = str(facts["outcome"])
        parts.append(f"résultat : {_OUTCOME_LABELS.get(outcome, outcome)}")
    if facts.get("file"):
        parts.append(f"fichier {facts['file']}")
    for r in (facts.get("ranges") or [])[:5]:
        piece = (
            f"bloc {r.get('chunk')} : octets {r['bytes'][0]}–{r['bytes'][1]}"
            if r.get("bytes")
            else f"bloc {r.get('chunk')}"
        )
        if r.get("rows"):
            piece += f", lignes de données {r['rows'][0]}–{r['rows'][1]}"
        if r.get("file"):
            piece += f" ({r['file']})"
        parts.append(piece)
    if facts.get("changed_chunk_count"):
        parts.append(f"{facts['changed_chunk_count']} bloc(s) modifié(s) au total")
    if facts.get("key_id"):
        parts.append(f"clé {facts['key_id']}")
    for column in (facts.get("columns") or [])[:10]:
        if isinstance(column, dict) and column.get("column"):
            parts.append(_column_fact(column))
    if facts.get("scan_mode"):
        scanned = (
            f", {facts['scanned_rows']} ligne(s) analysée(s) sur {facts['rows']}"
            if "rows" in facts and "scanned_rows" in facts
            else ""
        )
        parts.append(f"analyse {'exhaustive' if facts['scan_mode'] == 'exhaustive' else 'par échantillon'}{scanned}")
    return "; ".join(parts) or json.dumps(facts, ensure_ascii=False, sort_keys=True)[:500]


def _body_context(alert: Alert) -> dict[str, Any]:
    return {"fields": _fields(alert), "incident_id": alert.incident_id, "idempotency_key": alert.idempotency_key}


def text_body(alert: Alert) -> str:
    """The plain-text part: every Art. 33 field, the commands to acknowledge and resolve, the idempotency key."""
    return render("incident_alert.txt", **_body_context(alert))


def html_body(alert: Alert) -> str:
    """The HTML part: the same fields in a table, every value escaped."""
    return render("incident_alert.html", **_body_context(alert))


def message_id(alert: Alert) -> str:
    """A stable Message-ID: a retry of the same outbox row is recognisably the same message."""
    return f"<{alert.idempotency_key}@charter-guardrails>"


def email_message(alert: Alert, *, sender: str) -> EmailMessage:
    """The e-mail of ``alert``: French subject, plain text and HTML, idempotency key in the headers."""
    msg = EmailMessage()
    msg["Subject"] = subject(alert)
    msg["From"] = sender
    msg["To"] = alert.recipient
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(alert)
    msg[IDEMPOTENCY_HEADER] = alert.idempotency_key
    msg["X-Charter-Incident"] = str(alert.incident_id)
    msg["Content-Language"] = "fr"
    msg.set_content(text_body(alert))
    msg.add_alternative(html_body(alert), subtype="html")
    return msg


def webhook_body(alert: Alert) -> dict[str, Any]:
    """The JSON a webhook receives; ``idempotency_key`` is also sent as a header."""
    return {
        "idempotency_key": alert.idempotency_key,
        "event": "incident.raised",
        "attempt": alert.attempt,
        "incident": alert.payload,
        "subject": subject(alert),
    }


__all__ = [
    "IDEMPOTENCY_HEADER",
    "Alert",
    "email_message",
    "html_body",
    "message_id",
    "subject",
    "text_body",
    "webhook_body",
]
