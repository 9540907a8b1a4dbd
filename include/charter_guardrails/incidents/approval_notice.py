"""Approval notices of a model refresh: the approvers are told that a decision waits, or that nobody answered.

They go out the way incident alerts do (see :mod:`charter_guardrails.incidents.incident`): one
``alert_outbox`` row per target, written in the caller's transaction, delivered at least once by the
relay (:mod:`charter_guardrails.incidents.relay`) with its idempotency key. The targets are each
approver's e-mail and each signed webhook of the policy's ``incidents.destinations``. The rows have no
incident; their payload's ``kind`` says which notice it is:

* ``approval_requested``: the approver's brief (verdicts and metrics, never a raw value) and the link to
  the Airflow form (``settings.ui_base_url``), with the deadline;
* ``approval_timed_out``: nobody answered before the deadline; the refresh is rejected.

A payload never holds personal data: the brief carries counts, verdicts and masked examples only, and
the approvers' names are not repeated in it.
"""

from __future__ import annotations

import hashlib
import html
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_incidents import DestinationKind
from charter_guardrails.incidents.messages import Alert
from charter_guardrails.ledger.audit_rows import outbox_event
from charter_guardrails.ledger.models import AlertOutbox, utcnow

REQUESTED = "approval_requested"
TIMED_OUT = "approval_timed_out"
KINDS = frozenset({REQUESTED, TIMED_OUT})
_EVENTS = {REQUESTED: "approval.requested", TIMED_OUT: "approval.timed_out"}
_PREFIX = "[Charte IA – Validation]"
#: Who the audit events of the queued notices name.
ACTOR = "charter-guardrails"


def notice_targets(policy: UseCasePolicy, usernames: list[str]) -> list[tuple[str, str]]:
    """``(channel, recipient)``: the e-mail of each approver named in ``usernames`` (those the form is assigned
    to), then each webhook destination of the policy."""
    targets = [("email", str(a.email)) for a in policy.approvers if a.username and a.username in usernames]
    targets += [(d.kind.value, d.conn_id) for d in policy.incidents.destinations if d.kind is DestinationKind.WEBHOOK]
    return list(dict.fromkeys(targets))


def queue_approval_notice(
    session: Session, policy: UseCasePolicy, *, kind: str, run_id: str, usernames: list[str], payload: dict[str, Any]
) -> list[AlertOutbox]:
    """Queue one notice per target in the caller's transaction; a retried task queues nothing twice.

    :param kind: :data:`REQUESTED` or :data:`TIMED_OUT`.
    :param usernames: the approvers the form is assigned to (not the user who triggered the run).
    :param payload: ``link`` (the form), ``deadline`` (ISO 8601), ``brief`` (Markdown), ``outcome``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown approval notice {kind!r}; use one of {sorted(KINDS)}")
    body = {**payload, "kind": kind, "use_case": policy.id, "title": policy.title, "run_id": run_id}
    rows = []
    for channel, recipient in notice_targets(policy, usernames):
        key = hashlib.sha256(f"{kind}|{policy.id}|{run_id}|{channel}|{recipient}".encode()).hexdigest()[:40]
        if session.scalars(select(AlertOutbox.id).where(AlertOutbox.idempotency_key == key)).first() is not None:
            continue
        row = AlertOutbox(
            incident_id=None,
            channel=channel,
            recipient=recipient,
            idempotency_key=key,
            payload=body,
            status="pending",
            attempts=0,
            next_attempt_at=utcnow(),
        )
        session.add(row)
        rows.append(row)
    session.flush()
    for row in rows:
        outbox_event(session, row, actor=ACTOR, action="alert.queued", payload={"kind": kind})
    return rows


def is_approval_notice(alert: Alert) -> bool:
    return alert.payload.get("kind") in KINDS


def _deadline(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%d/%m/%Y à %H:%M UTC")
    except ValueError:
        return str(value)


def subject(alert: Alert) -> str:
    p = alert.payload
    if p.get("kind") == TIMED_OUT:
        return f"{_PREFIX} Mise à jour du modèle {p.get('use_case')} rejetée : aucune réponse dans le délai"
    deadline = _deadline(p.get("deadline"))
    return f"{_PREFIX} Mise à jour du modèle {p.get('use_case')} : décision attendue avant le {deadline}"


def text_body(alert: Alert) -> str:
    """The plain text: what is asked (or what happened), the link to the form, the brief, the idempotency key."""
    p = alert.payload
    if p.get("kind") == TIMED_OUT:
        lines = [
            f"Personne n'a répondu avant le {_deadline(p.get('deadline'))} à la demande de validation de la mise à "
            f"jour du modèle « {p.get('title')} » ({p.get('use_case')}).",
            "La mise à jour est rejetée (rejected: no answer) et le modèle en production reste inchangé.",
            f"Exécution : {p.get('run_id')}",
            f"Formulaire : {p.get('link')}",
        ]
    else:
        lines = [
            f"Une mise à jour du modèle « {p.get('title')} » ({p.get('use_case')}) attend votre décision "
            f"avant le {_deadline(p.get('deadline'))}. Sans réponse, elle sera rejetée.",
            "La personne qui a lancé la mise à jour ne peut pas la valider (principe des quatre yeux).",
            f"Formulaire de validation : {p.get('link')}",
            f"Exécution : {p.get('run_id')}",
            "",
            str(p.get("brief") or ""),
        ]
    return "\n".join([*lines, "", f"Clé d'idempotence : {alert.idempotency_key}", ""])


def html_body(alert: Alert) -> str:
    """The HTML part: the plain text, escaped, and the form as a link."""
    link = html.escape(str(alert.payload.get("link") or ""), quote=True)
    return f'<p><a href="{link}">Ouvrir le formulaire de validation</a></p><pre>{html.escape(text_body(alert))}</pre>'


def webhook_body(alert: Alert) -> dict[str, Any]:
    """The JSON a webhook receives; ``idempotency_key`` is also sent as a header."""
    kind = str(alert.payload.get("kind"))
    return {
        "idempotency_key": alert.idempotency_key,
        "event": _EVENTS.get(kind, kind),
        "kind": kind,
        "attempt": alert.attempt,
        "approval": alert.payload,
        "subject": subject(alert),
        "link": alert.payload.get("link"),
    }


__all__ = [
    "KINDS",
    "REQUESTED",
    "TIMED_OUT",
    "html_body",
    "is_approval_notice",
    "notice_targets",
    "queue_approval_notice",
    "subject",
    "text_body",
    "webhook_body",
]
