"""``charter attest add|list``: the governance team's attestations for the engagements no pipeline can show."""

from __future__ import annotations

import argparse
import getpass
import os
from datetime import UTC, date, datetime
from typing import Any

from charter_guardrails.cli.main import EXIT_OK, add_json_flag, emit, table


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-12-31") from None


def _actor() -> str:
    return os.environ.get("CHARTER_ACTOR") or getpass.getuser()


def register(subparsers: Any) -> None:
    attest = subparsers.add_parser(
        "attest", help="attestations of the governance team for organisational and mixed engagements"
    )
    sub = attest.add_subparsers(dest="attest_command", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add",
        help="record an attestation in the signed audit chain",
        description="Record an attestation of an engagement that needs one (organisational or mixed): "
        "what was done, the document that proves it, who attests, and until when it holds.",
    )
    add.add_argument("--engagement", required=True, help="the engagement's id, e.g. equite.3")
    add.add_argument("--statement", required=True, help="what was done (at least 20 characters)")
    add.add_argument("--document", required=True, help="the reference of the proof (minutes, deliberation, …)")
    add.add_argument("--by", required=True, help="the person who attests")
    add.add_argument("--on", type=_day, help="the day of the attestation, YYYY-MM-DD (default: today)")
    add.add_argument("--expires", type=_day, required=True, help="the last day it holds, YYYY-MM-DD")
    add_json_flag(add)
    add.set_defaults(handler=_add)
    lst = sub.add_parser("list", help="recorded attestations, newest first, and whether each is valid today")
    lst.add_argument("--engagement", help="only this engagement's attestations")
    add_json_flag(lst)
    lst.set_defaults(handler=_list)


def _add(args: argparse.Namespace) -> int:
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.attestations import record_attestation

    with ledger_session() as session:
        attestation = record_attestation(
            session,
            engagement_id=args.engagement,
            statement=args.statement,
            document_ref=args.document,
            attested_by=args.by,
            attested_on=args.on or datetime.now(UTC).date(),
            expires_on=args.expires,
            recorded_by=_actor(),
        ).to_json_dict()
    emit(
        args,
        attestation,
        f"{attestation['engagement']}: attested by {attestation['attested_by']} on {attestation['attested_on']}, "
        f"valid until {attestation['expires_on']} (audit event {attestation['seq']})",
    )
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.attestations import list_attestations

    today = datetime.now(UTC).date()
    with ledger_session() as session:
        found = list_attestations(session, args.engagement)
    rows = [{**a.to_json_dict(), "valid_today": a.valid_on(today)} for a in reversed(found)]
    emit(
        args,
        rows,
        lambda: (
            table(
                [
                    [
                        r["engagement"],
                        r["attested_by"],
                        r["attested_on"],
                        r["expires_on"],
                        "valid" if r["valid_today"] else "expired" if r["expires_on"] < today.isoformat() else "-",
                        r["document_ref"],
                    ]
                    for r in rows
                ],
                ["engagement", "attested by", "on", "expires", "today", "document"],
            )
            if rows
            else "no attestation yet; record one with `charter attest add`"
        ),
    )
    return EXIT_OK
