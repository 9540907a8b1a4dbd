"""``charter dsr find`` and ``charter dsr erase``: a data subject's access and erasure requests (GDPR Art. 15, 17).

The identifier is read from ``--identifier VALUE`` or, with ``--identifier -``, from the first line of standard
input, so that it need not stay in the shell's history. Nothing the commands print, log or record holds it: the
output names the request id, the identifier's type and keyed hash, and per place its path, rows and columns.

Exit codes: ``find`` 0 the person was found, 1 found nowhere; ``erase`` 0 every file that held the person was
rewritten, 1 nothing to erase or a file could not be changed (the report names it); both 2 on bad input (a
malformed identifier, an unknown type or use case, a request id that cannot name a folder).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from charter_guardrails.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_json_flag, emit, table

TYPES = ("email", "phone", "nir", "iban", "name")
_EPILOG = (
    "Give the identifier as `--identifier -` to read it from the first line of standard input: it then stays out "
    "of the shell history and the process list. The value is never printed, logged or stored; the report and the "
    "audit chain hold its keyed hash (HMAC with the pseudonymisation key)."
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--identifier",
        required=True,
        metavar="VALUE",
        help="the person's identifier, or `-` to read it from standard input (recommended: not kept in history)",
    )
    parser.add_argument("--type", required=True, choices=TYPES, help="the kind of identifier")
    parser.add_argument("--use-case", metavar="UC", help="search this use case only (default: every policy)")
    parser.add_argument("--actor", help="who answers the request (default: $CHARTER_ACTOR or the login name)")
    add_json_flag(parser)


def register(subparsers: Any) -> None:
    dsr = subparsers.add_parser(
        "dsr", help="data-subject requests: find a person's data (access) or erase it", epilog=_EPILOG
    )
    sub = dsr.add_subparsers(dest="dsr_command", metavar="ACTION", required=True)
    find_help = (
        "where the person appears: datasets, batches, working copies, model versions "
        "(exit 0 found, 1 found nowhere, 2 bad input)"
    )
    find = sub.add_parser("find", help=find_help, description=find_help, epilog=_EPILOG)
    _common(find)
    find.add_argument("--request-id", metavar="ID", help="the request's id, names the report folder (default: new)")
    find.set_defaults(handler=_find)
    erase_help = (
        "remove the person's rows from every file the project owns, re-sign the manifests, record it "
        "(exit 0 erased, 1 nothing to erase or a file left unchanged, 2 bad input)"
    )
    erase = sub.add_parser("erase", help=erase_help, description=erase_help, epilog=_EPILOG)
    _common(erase)
    erase.add_argument(
        "--request-id", required=True, metavar="ID", help="the request's id (recorded, names the report)"
    )
    erase.add_argument("--yes", action="store_true", help="erase without asking for confirmation")
    erase.set_defaults(handler=_erase)


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor or os.environ.get("CHARTER_ACTOR") or getpass.getuser())


def _value(args: argparse.Namespace) -> str:
    if args.identifier != "-":
        return str(args.identifier)
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def _places_table(places: list[dict[str, Any]]) -> str:
    rows = [
        (p["use_case"], p["dataset"] or "-", p["kind"], p["path"], p["rows"], ", ".join(p["columns"])) for p in places
    ]
    return table(rows, ["use case", "dataset", "kind", "path", "rows", "columns"])


def _models_text(models: list[dict[str, Any]]) -> str:
    if not models:
        return "no model version was trained on data that held the person"
    lines = [
        f"  {m['use_case']} v{m['version']} ({m['status']}, run {m['run_id']}): {', '.join(m['basis'])}" for m in models
    ]
    return "model versions trained on data that held the person (the DPO decides on retraining):\n" + "\n".join(lines)


def _find(args: argparse.Namespace) -> int:
    from charter_guardrails.dsr.find import find
    from charter_guardrails.dsr.report import report_folder

    result = find(_value(args), args.type, use_case=args.use_case, request_id=args.request_id, actor=_actor(args))
    data = {**result.to_json_dict(), "report": str(report_folder(result.request_id))}

    def human() -> str:
        head = f"request {data['request_id']}: {data['identifier_type']} {data['identifier_hash'][:28]}…"
        if not data["places"]:
            body = f"found nowhere ({data['files_searched']} files, {data['rows_searched']} rows searched)"
        else:
            body = f"found in {len(data['places'])} place(s), {data['rows']} row(s):\n" + _places_table(data["places"])
        return f"{head}\n{body}\n{_models_text(data['model_versions'])}\nreport: {data['report']}"

    emit(args, data, human)
    return EXIT_OK if result.found else EXIT_FAILED


def _confirmed(args: argparse.Namespace) -> bool:
    """``--yes``, or a "y" typed at the terminal after the places are shown."""
    if args.yes:
        return True
    if args.identifier == "-" or not sys.stdin.isatty():
        print("charter: error: an erasure rewrites files: add --yes to confirm it", file=sys.stderr)
        return False
    from charter_guardrails.dsr.find import search
    from charter_guardrails.dsr.identifiers import parse_identifier

    found = search(parse_identifier(args.identifier, args.type), args.request_id, args.use_case).to_json_dict()
    print(_places_table(found["places"]) if found["places"] else "the person appears nowhere")
    return input("erase these rows? [y/N] ").strip().lower() in ("y", "yes", "o", "oui")


def _erase(args: argparse.Namespace) -> int:
    from charter_guardrails.dsr.erase import erase
    from charter_guardrails.dsr.find import check_request_id
    from charter_guardrails.dsr.identifiers import parse_identifier
    from charter_guardrails.dsr.report import report_folder

    check_request_id(args.request_id)
    value = _value(args)
    parse_identifier(value, args.type)  # a malformed value is refused before anything is asked or changed
    if not _confirmed(args):
        return EXIT_USAGE
    result = erase(value, args.type, args.request_id, use_case=args.use_case, actor=_actor(args))
    data = {**result.to_json_dict(), "report": str(report_folder(args.request_id))}

    def human() -> str:
        files = [f for f in data["files"]]
        lines = [
            f"  {f['path']}: {f['rows_removed']} row(s) removed"
            + "".join(
                f", manifest #{m['old_manifest_id']} re-signed as #{m['new_manifest_id']}" for m in f["manifests"]
            )
            + (f" — NOT CHANGED: {f['error']}" if f["error"] else "")
            + (f" — KEPT under {', '.join(f['held_by'])} (GDPR Art. 17(3)(e))" if f["held_by"] else "")
            for f in files
        ]
        head = f"request {data['request_id']}: {data['rows_removed']} row(s) erased from {len(files)} file(s)"
        return "\n".join([head, *lines, _models_text(data["model_versions"]), f"report: {data['report']}"])

    emit(args, data, human)
    return EXIT_OK if data["rows_removed"] and result.complete else EXIT_FAILED
