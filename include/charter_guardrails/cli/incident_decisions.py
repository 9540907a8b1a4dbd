"""``charter incidents notify|communicate|register``: the GDPR decisions on an incident, and the register of
breaches.

- ``notify N --decision to_notify|notified|not_required``: the Art. 33 decision (notification to the
  supervisory authority), with ``--on --authority --reference`` when notified, ``--rationale`` when not
  required;
- ``communicate N --decision communicated|not_required``: the Art. 34 decision (communication to the data
  subjects), with ``--on --channel`` when communicated, ``--ground a|b|c`` when not required;
- ``register --from DATE --to DATE``: the register of breaches (Art. 33(5)) as HTML, JSON and CSV.

The ``incidents`` group belongs to :mod:`.integrity_incidents`, which registers after this module (modules
register in name order): :func:`register` adds these actions to the group when the group creates its
sub-commands (at once if the group already exists), and makes ``incidents resolve`` exit 1, with what to
record, while the Art. 33 decision of the incident is open.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from charter_guardrails.cli.main import EXIT_OK, add_json_flag, emit

GROUP = "incidents"
_BY_HELP = "who decides: a named person with the security-officer role (recorded in the audit chain)"


def register_incident_actions(sub: Any) -> None:
    """Add ``notify``, ``communicate`` and ``register`` to the sub-commands of ``charter incidents``."""
    notify = sub.add_parser(
        "notify",
        help="record the GDPR Art. 33 decision: notify the supervisory authority (CNIL) or not",
        description=(
            "Record the GDPR Art. 33 decision of an incident. `to_notify`: the notification is owed and not made "
            "yet; `notified`: give --on, --authority and --reference; `not_required`: give --rationale (at least "
            "50 characters: why the breach is unlikely to result in a risk, Art. 33(1))."
        ),
    )
    notify.add_argument("incident_id", type=int, metavar="ID")
    notify.add_argument("--decision", required=True, choices=["to_notify", "notified", "not_required"])
    notify.add_argument("--on", dest="day", metavar="YYYY-MM-DD", help="day of the notification (notified)")
    notify.add_argument("--authority", help="supervisory authority notified, e.g. CNIL (notified)")
    notify.add_argument("--reference", help="reference of the notification given by the authority (notified)")
    notify.add_argument("--rationale", help="why no notification is required (not_required, 50 characters or more)")
    notify.add_argument("--by", required=True, metavar="NAME", help=_BY_HELP)
    add_json_flag(notify)
    notify.set_defaults(handler=_notify)

    communicate = sub.add_parser(
        "communicate",
        help="record the GDPR Art. 34 decision: tell the data subjects or not",
        description=(
            "Record the GDPR Art. 34 decision of an incident. `communicated`: give --on and --channel; "
            "`not_required`: give --ground, the Art. 34(3) case: a (protective measures such as encryption), "
            "b (subsequent measures: the high risk is no longer likely), c (disproportionate effort: a public "
            "communication instead)."
        ),
    )
    communicate.add_argument("incident_id", type=int, metavar="ID")
    communicate.add_argument("--decision", required=True, choices=["communicated", "not_required"])
    communicate.add_argument("--on", dest="day", metavar="YYYY-MM-DD", help="day of the communication")
    communicate.add_argument("--channel", help="how the data subjects were told, e.g. courrier, e-mail, site web")
    communicate.add_argument("--ground", choices=["a", "b", "c"], help="Art. 34(3) ground (not_required)")
    communicate.add_argument("--by", required=True, metavar="NAME", help=_BY_HELP)
    add_json_flag(communicate)
    communicate.set_defaults(handler=_communicate)

    _add_register(sub)


def _add_register(sub: Any) -> None:
    register = sub.add_parser(
        "register",
        help="write the register of breaches of a period (GDPR Art. 33(5)) as HTML, JSON and CSV",
        description=(
            "Write the register of breaches: every incident detected from --from to --to (both included) with "
            "its facts, effects, remedial action, both GDPR decisions and its dates."
        ),
    )
    register.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD", help="first day")
    register.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD", help="last day (included)")
    register.add_argument("--out", type=Path, help="folder (default: <CHARTER_REPORTS_DIR>/registre)")
    register.add_argument("--format", default="html,json,csv", help="comma-separated: html, json, csv (default: all)")
    add_json_flag(register)
    register.set_defaults(handler=_register)


def _notify(args: argparse.Namespace) -> int:
    from charter_guardrails.incidents.decisions import decisions_dict, record_art33
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        incident = record_art33(
            session,
            args.incident_id,
            args.decision,
            actor=args.by,
            notified_on=args.day,
            authority=args.authority,
            reference=args.reference,
            rationale=args.rationale,
        )
        data = {"incident_id": incident.id, **decisions_dict(incident)}
    emit(args, data, lambda: _said(data, "art33"))
    return EXIT_OK


def _communicate(args: argparse.Namespace) -> int:
    from charter_guardrails.incidents.decisions import decisions_dict, record_art34
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        incident = record_art34(
            session,
            args.incident_id,
            args.decision,
            actor=args.by,
            communicated_on=args.day,
            channel=args.channel,
            ground=args.ground,
        )
        data = {"incident_id": incident.id, **decisions_dict(incident)}
    emit(args, data, lambda: _said(data, "art34"))
    return EXIT_OK


def _said(data: dict[str, Any], article: str) -> str:
    decision = data[article]
    text = (
        f"incident #{data['incident_id']}: {article.replace('art', 'Art. ')} decision `{decision['decision']}` "
        f"recorded (by {decision['decided_by']}, {decision['decided_at'][:19]} UTC)"
    )
    if article == "art33" and decision["open"]:
        text += "; the notification is still owed: record `notified` once it is made"
    return text


def _register(args: argparse.Namespace) -> int:
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.incidents.register import build_register, parse_formats, write_register
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.charter_report import parse_period

    formats = parse_formats(args.format)
    start, end = parse_period(args.start, args.end)
    folder = args.out or get_settings().reports_dir / "registre"
    with ledger_session() as session:
        document = build_register(session, start, end)
    paths = write_register(document, folder, formats)
    data = {"count": document["count"], "art33_open": document["art33_open"], "files": [str(p) for p in paths]}
    emit(
        args,
        data,
        lambda: "\n".join(
            [
                f"register of breaches: {data['count']} incident(s), "
                f"{data['art33_open']} with the Art. 33 decision open",
                *(f"  {p}" for p in data["files"]),
            ]
        ),
    )
    return EXIT_OK
