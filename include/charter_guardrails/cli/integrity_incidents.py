"""``charter incidents`` and ``charter alerts``: the incidents the guardrails raised, and their alert outbox.

Registered right after :mod:`.integrity` (modules register in name order), so ``charter --help`` lists
``hash``, ``verify``, ``incidents`` and ``alerts`` together.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any

from charter_guardrails.cli.incident_decisions import register_incident_actions
from charter_guardrails.cli.incident_export import add_export_command
from charter_guardrails.cli.main import EXIT_FAILED, EXIT_OK, add_json_flag, emit, table
from charter_guardrails.core.errors import IncidentDecisionRequired, UsageError


def register(subparsers: Any) -> None:
    incidents = subparsers.add_parser(
        "incidents", help="security and GDPR incidents (Art. 33 fields, 72-hour deadline)"
    )
    sub = incidents.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)
    list_ = sub.add_parser("list", help="list incidents, newest first")
    list_.add_argument("--status", choices=["open", "acknowledged", "resolved"])
    list_.add_argument("--use-case")
    list_.add_argument("--limit", type=int, default=50)
    add_json_flag(list_)
    list_.set_defaults(handler=_incidents_list)
    show = sub.add_parser("show", help="every field of one incident, and its alert deliveries")
    show.add_argument("incident_id", type=int, metavar="ID")
    add_json_flag(show)
    show.set_defaults(handler=_incidents_show)
    for action, helptext in (("ack", "acknowledge an open incident"), ("resolve", "resolve an incident")):
        p = sub.add_parser(action, help=helptext)
        p.add_argument("incident_id", type=int, metavar="ID")
        p.add_argument("--by", default=os.environ.get("USER") or "cli", help="who (default: $USER)")
        p.add_argument("--comment", help="why; recorded in the incident and the audit chain")
        add_json_flag(p)
        p.set_defaults(handler=_incidents_transition, to=action)
    register_incident_actions(sub)
    add_export_command(sub)

    alerts = subparsers.add_parser("alerts", help="incident alerts (outbox, relay)")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    relay = alerts_sub.add_parser(
        "relay",
        help="queue due reminders and escalations, then deliver due alerts by e-mail (CHARTER_SMTP_*) and webhook",
    )
    relay.add_argument("--once", action="store_true", help="one batch only (default: drain every alert due now)")
    add_json_flag(relay)
    relay.set_defaults(handler=_alerts_relay)
    status = alerts_sub.add_parser("status", help="outbox rows by status")
    add_json_flag(status)
    status.set_defaults(handler=_alerts_status)


#: Every field of an incident, in the order of GDPR Art. 33(3) and then its handling.
INCIDENT_FIELDS = (
    "id",
    "key",
    "status",
    "breach_type",
    "severity",
    "title",
    "use_case",
    "dataset",
    "run_id",
    "detected_at",
    "notify_deadline",
    "nature",
    "facts",
    "data_subject_categories",
    "approx_data_subjects",
    "personal_data_categories",
    "approx_records",
    "likely_consequences",
    "measures_taken",
    "dpo_contact",
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "resolved_at",
    "comments",
)


def incident_dict(incident: Any) -> dict[str, Any]:
    from charter_guardrails.incidents.decisions import decisions_dict

    out = {}
    for name in INCIDENT_FIELDS:
        value = getattr(incident, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    out["decisions"] = decisions_dict(incident)
    return out


def _outbox(session: Any, incident_id: int) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from charter_guardrails.ledger.models import AlertOutbox

    rows = session.scalars(select(AlertOutbox).where(AlertOutbox.incident_id == incident_id).order_by(AlertOutbox.id))
    return [
        {
            "channel": o.channel,
            "recipient": o.recipient,
            "status": o.status,
            "attempts": o.attempts,
            "idempotency_key": o.idempotency_key,
            "next_attempt_at": o.next_attempt_at.isoformat() if o.next_attempt_at else None,
            "delivered_at": o.delivered_at.isoformat() if o.delivered_at else None,
            "last_error": o.last_error,
        }
        for o in rows
    ]


def _incidents_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from charter_guardrails.ledger.models import Incident
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        query = select(Incident).order_by(Incident.id.desc()).limit(args.limit)
        if args.status:
            query = query.where(Incident.status == args.status)
        if args.use_case:
            query = query.where(Incident.use_case == args.use_case)
        incidents = [incident_dict(i) for i in session.scalars(query)]
    emit(
        args,
        incidents,
        lambda: (
            table(
                [
                    [
                        i["id"],
                        i["status"],
                        i["breach_type"],
                        i["severity"],
                        f"{i['use_case']}.{i['dataset'] or '-'}",
                        i["detected_at"][:19],
                        i["notify_deadline"][:19],
                        i["title"],
                    ]
                    for i in incidents
                ],
                ["id", "status", "type", "severity", "dataset", "detected (UTC)", "notify before", "title"],
            )
            if incidents
            else "no incident"
        ),
    )
    return EXIT_OK


def _incidents_show(args: argparse.Namespace) -> int:
    import json

    from charter_guardrails.ledger.models import Incident
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        incident = session.get(Incident, args.incident_id)
        if incident is None:
            raise UsageError(f"no incident #{args.incident_id}; list them with `charter incidents list`")
        data = {**incident_dict(incident), "alerts": _outbox(session, incident.id)}

    def human() -> str:
        lines = [
            f"{name:26} {json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}"
            for name, value in data.items()
            if name != "alerts"
        ]
        lines.append("alerts:")
        lines += [
            f"  - {a['channel']} {a['recipient']}: {a['status']} after {a['attempts']} attempt(s)"
            + (f", delivered {a['delivered_at']}" if a["delivered_at"] else "")
            + (f", last error: {a['last_error']}" if a["last_error"] else "")
            for a in data["alerts"]
        ]
        return "\n".join(lines)

    emit(args, data, human)
    return EXIT_OK


def _incidents_transition(args: argparse.Namespace) -> int:
    from charter_guardrails.incidents.incident import IncidentStatus, transition_incident
    from charter_guardrails.ledger.store import ledger_session

    to = IncidentStatus.ACKNOWLEDGED if args.to == "ack" else IncidentStatus.RESOLVED
    try:
        with ledger_session() as session:
            incident = transition_incident(session, args.incident_id, to, actor=args.by, comment=args.comment)
            data = incident_dict(incident)
    except IncidentDecisionRequired as exc:
        # Not a usage error: the incident is there, a decision is owed first (exit 1).
        if getattr(args, "json", False):
            print(json.dumps({"error": "decision_required", "message": str(exc), **exc.to_json_dict()}))
        print(f"charter: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    emit(args, data, f"incident #{data['id']} is {data['status']} (by {args.by})")
    return EXIT_OK


def _alerts_relay(args: argparse.Namespace) -> int:
    from charter_guardrails.incidents.followup import queue_due_followups_safely
    from charter_guardrails.incidents.relay import relay, relay_once, utcnow
    from charter_guardrails.incidents.senders import default_senders

    senders = default_senders()
    followups = queue_due_followups_safely(now=utcnow())
    report = relay_once(senders) if args.once else relay(senders)
    report.queued = followups.queued
    data = {**report.to_json_dict(), "followups": followups.to_json_dict()}

    def human() -> str:
        text = (
            f"alerts: {report.queued} queued ({followups.reminders} reminder(s), {followups.escalations} "
            f"escalation(s)), {report.claimed} due, {report.delivered} delivered, "
            f"{report.failed} failed (retried later), {report.dead} dead"
        )
        if followups.error:
            text += f"\n{followups.error}"
        if followups.skipped_use_cases:
            text += (
                f"\nreminders and escalations skipped for use case(s) {', '.join(followups.skipped_use_cases)}: "
                "their policy cannot be loaded; check it with `charter policy validate`"
            )
        for channel, count in report.unsent_channels.items():
            text += f"\n{count} {channel} alert(s) left pending: no {channel} sender configured" + (
                " (set CHARTER_SMTP_HOST)" if channel == "email" else ""
            )
        for error in report.errors[:10]:
            text += (
                f"\n  outbox #{error['outbox_id']} ({error['channel']}), attempt {error['attempts']}: {error['error']}"
            )
        return text

    emit(args, data, human)
    return EXIT_OK if report.failed == 0 and followups.error is None else EXIT_FAILED


def _alerts_status(args: argparse.Namespace) -> int:
    from charter_guardrails.incidents.relay import outbox_status

    counts = outbox_status()
    emit(args, counts, lambda: ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "outbox empty")
    return EXIT_OK
