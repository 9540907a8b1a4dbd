"""``charter incidents export``: the incidents' audit events as ECS JSON lines, for a SIEM.

One line per ``incident.*`` event of the audit chain recorded in the period (raised, acknowledged,
resolved, notification decisions), each an ECS event of :mod:`charter_guardrails.incidents.siem`, in
chain order; ``event.id`` is stable, so importing the same period twice creates no duplicate.

The ``incidents`` group belongs to :mod:`.integrity_incidents`, which registers after this module
(modules register in name order). :func:`register` therefore adds ``export`` to the group at the
moment the group creates its sub-commands; if the group already exists, at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from charter_guardrails.cli.main import EXIT_OK
from charter_guardrails.core.errors import UsageError

GROUP = "incidents"
COMMAND = "export"
_MOMENT_HELP = "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM], UTC when no offset is given"


def add_export_command(actions: Any) -> None:
    """Add ``export`` to the sub-commands of the ``incidents`` group (once)."""
    if COMMAND in actions.choices:
        return
    export = actions.add_parser(
        COMMAND,
        help="the incidents' audit events as ECS JSON lines, for a SIEM",
        description=(
            "Print one Elastic Common Schema event per line for every incident event of the audit chain "
            "(raised, acknowledged, resolved, notification decisions) recorded in the period, in chain order. "
            "No personal value: titles, categories, counts and times, never comments."
        ),
    )
    export.add_argument(
        "--since", required=True, type=_since, metavar="DATE|DATETIME", help=f"from this moment: {_MOMENT_HELP}"
    )
    export.add_argument(
        "--until",
        type=_until,
        metavar="DATE|DATETIME",
        help=f"before this moment (default: now): {_MOMENT_HELP}; a date includes that whole day",
    )
    export.add_argument("--format", choices=["jsonl"], default="jsonl", help="output format (default: %(default)s)")
    export.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    export.set_defaults(handler=_export)


def parse_moment(text: str) -> datetime | date:
    """A date, or a timezone-aware datetime (UTC when no offset is given)."""
    value = text.strip()
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or a date and time: use {_MOMENT_HELP}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _since(text: str) -> datetime:
    value = parse_moment(text)
    return value if isinstance(value, datetime) else datetime.combine(value, time(0), UTC)


def _until(text: str) -> datetime:
    value = parse_moment(text)
    return value if isinstance(value, datetime) else datetime.combine(value + timedelta(days=1), time(0), UTC)


def _write(events: Any, out: TextIO) -> int:
    count = 0
    for event in events:
        out.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def _export(args: argparse.Namespace) -> int:
    from charter_guardrails.incidents.siem import incident_events
    from charter_guardrails.ledger.store import ledger_session

    until = args.until or datetime.now(UTC)
    if until <= args.since:
        raise UsageError(
            f"--until ({until.isoformat()}) is not after --since ({args.since.isoformat()}): give a later --until"
        )
    with ledger_session() as session:
        events = incident_events(session, args.since, until=until)
        if args.out is None:
            _write(events, sys.stdout)
            return EXIT_OK
        partial = args.out.with_name(f".{args.out.name}.{os.getpid()}.part")
        try:
            with partial.open("w", encoding="utf-8") as out:
                count = _write(events, out)
            partial.replace(args.out)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise UsageError(
                f"cannot write {args.out} ({exc.strerror or type(exc).__name__}): choose a writable --out"
            ) from None
    print(f"{count} incident event(s) written to {args.out}", file=sys.stderr)
    return EXIT_OK
