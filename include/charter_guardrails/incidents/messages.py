"""What an incident alert says: a French e-mail and a JSON webhook body.

Both are built from the outbox row's payload (the Art. 33 fields, see
:func:`charter_guardrails.incidents.incident.incident_payload`), which never holds a raw personal value:
facts are chunk numbers, byte and line ranges, digests and counts.
Both carry the row's idempotency key, so a receiver can drop a duplicate delivery.
The e-mail's parts are the templates ``incident_alert.txt`` and ``incident_alert.html`` (autoescaped);
the webhook body stays JSON.

The payload's ``kind`` says which alert it is: ``alert`` (the incident was raised; the default),
``reminder`` (the Art. 33 notification is due in ``threshold_hours``) or ``escalation`` (nobody
acknowledged the incident within ``after_hours``; see :mod:`charter_guardrails.incidents.followup`).
Every alert links to the incident in the governance view, and to its acknowledge form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from charter_guardrails.core.settings import get_settings
from charter_guardrails.reporting.rendering import render
from charter_guardrails.reporting.vocabulary import breach_type_label, severity_label

#: Header that carries the idempotency key (e-mail and webhook).
IDEMPOTENCY_HEADER = "X-Idempotency-Key"
#: Where the Airflow api-server mounts the governance view (``URL_PREFIX`` of the ``charter_airflow`` plugin).
VIEW_PREFIX = "/charte"
#: The id of the acknowledge button on the incident's page.
ACK_ANCHOR = "acquitter"
#: The webhook ``event`` of each kind of alert.
_EVENTS = {"alert": "incident.raised", "reminder": "incident.reminder", "escalation": "incident.escalation"}


@dataclass(frozen=True)
class Alert:
    """One outbox row to deliver, detached from the database session."""

    outbox_id: int
    #: ``None`` for an approval notice of a model refresh (:mod:`charter_guardrails.incidents.approval_notice`).
    incident_id: int | None
    channel: str
    recipient: str
    idempotency_key: str
    payload: dict[str, Any]
    attempt: int


def kind(alert: Alert) -> str:
    """``alert``, ``reminder`` or ``escalation``; rows queued before kinds existed are ``alert``."""
    value = alert.payload.get("kind") or "alert"
    return value if value in _EVENTS else "alert"


def incident_link(alert: Alert) -> str:
    """The incident's page in the governance view."""
    return f"{get_settings().ui_base_url}{VIEW_PREFIX}/incidents/{alert.payload.get('incident_id', alert.incident_id)}"


def ack_link(alert: Alert) -> str:
    """The incident's page, scrolled to its acknowledge button."""
    return f"{incident_link(alert)}#{ACK_ANCHOR}"


def _hours(value: Any) -> str:
    """Hours the French way: ``4``, ``1,5``."""
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}".replace(".", ",")


def _deadline(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%d/%m/%Y à %H:%M UTC")
    except ValueError:
        return str(value)


def headline(alert: Alert) -> str:
    """The first sentence of the alert: what happened, or what is due, and by whom."""
    p = alert.payload
    number = p.get("incident_id", alert.incident_id)
    if kind(alert) == "reminder":
        return (
            f"Rappel : la notification à la CNIL de l'incident n°{number} (RGPD art. 33(1)) est due dans "
            f"{_hours(p.get('threshold_hours', 0))} h, avant le {_deadline(p.get('notify_deadline'))}. "
            "Aucune décision de notification n'est encore enregistrée : décidez s'il faut notifier la CNIL "
            "et enregistrez la décision sur la page de l'incident."
        )
    if kind(alert) == "escalation":
        return (
            f"Escalade (niveau {p.get('level', 1)}) : l'incident n°{number} n'a pas été pris en compte depuis "
            f"{_hours(p.get('after_hours', 0))} h (délai fixé : {_hours(p.get('ack_within_hours', 0))} h). "
            "Vous êtes le contact d'escalade : prenez-le en compte ou faites-le prendre en compte."
        )
    return (
        "Un incident de sécurité a été détecté par les garde-fous de la charte IA de la Métropole "
        "(engagement Sûreté 2 : « toute corruption de données doit faire l'objet d'un incident de sécurité »)."
    )


def _notice(alert: Alert) -> Any:
    """The approval-notice module when ``alert`` is an approval notice, else ``None``."""
    from charter_guardrails.incidents import approval_notice

    return approval_notice if approval_notice.is_approval_notice(alert) else None


def subject(alert: Alert) -> str:
    """The e-mail subject: the kind of alert first, then the incident's number and title."""
    if notice := _notice(alert):
        return str(notice.subject(alert))
    p = alert.payload
    number, title = p.get("incident_id", alert.incident_id), p.get("title", "incident de sécurité")
    prefix = "[Charte IA – Sûreté]"
    if kind(alert) == "reminder":
        prefix += f" Rappel : notification CNIL due dans {_hours(p.get('threshold_hours', 0))} h –"
    elif kind(alert) == "escalation":
        prefix += f" Escalade : incident non pris en compte depuis {_hours(p.get('after_hours', 0))} h –"
    return f"{prefix} Incident n°{number} : {title}"


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
    return {
        "headline": headline(alert),
        "link": incident_link(alert),
        "ack_link": ack_link(alert),
        "fields": _fields(alert),
        "incident_id": alert.incident_id,
        "idempotency_key": alert.idempotency_key,
    }


def text_body(alert: Alert) -> str:
    """The plain-text part: what happened, the links, every Art. 33 field, the commands, the idempotency key."""
    if notice := _notice(alert):
        return str(notice.text_body(alert))
    return render("incident_alert.txt", **_body_context(alert))


def html_body(alert: Alert) -> str:
    """The HTML part: the same fields in a table, every value escaped."""
    if notice := _notice(alert):
        return str(notice.html_body(alert))
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
    if alert.incident_id is not None:
        msg["X-Charter-Incident"] = str(alert.incident_id)
    msg["Content-Language"] = "fr"
    msg.set_content(text_body(alert))
    msg.add_alternative(html_body(alert), subtype="html")
    return msg


def webhook_body(alert: Alert) -> dict[str, Any]:
    """The JSON a webhook receives; ``idempotency_key`` is also sent as a header."""
    if notice := _notice(alert):
        return dict(notice.webhook_body(alert))
    return {
        "idempotency_key": alert.idempotency_key,
        "event": _EVENTS[kind(alert)],
        "kind": kind(alert),
        "attempt": alert.attempt,
        "incident": alert.payload,
        "subject": subject(alert),
        "link": incident_link(alert),
        "ack_link": ack_link(alert),
    }


__all__ = [
    "ACK_ANCHOR",
    "IDEMPOTENCY_HEADER",
    "VIEW_PREFIX",
    "Alert",
    "ack_link",
    "email_message",
    "headline",
    "html_body",
    "incident_link",
    "kind",
    "message_id",
    "subject",
    "text_body",
    "webhook_body",
]
