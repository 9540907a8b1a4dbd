"""``charter report charter`` (the committee's charter report as signed HTML, JSON and PDF files) and
``charter report verify`` (a report file against its ``.sig.json``, with the public key only)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from charter_guardrails.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_json_flag, emit

ALL_FORMATS = ("html", "json", "pdf")


def _formats(value: str) -> list[str]:
    formats = [f.strip().lower() for f in value.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(ALL_FORMATS))
    if unknown or not formats:
        raise argparse.ArgumentTypeError(
            f"{value!r}: formats are a comma-separated list of {', '.join(ALL_FORMATS)}, e.g. html,pdf"
        )
    return list(dict.fromkeys(formats))


def add_output_options(parser: argparse.ArgumentParser, folder: str) -> None:
    """``--out``, ``--format`` and ``--json`` of a command that writes documents as HTML, JSON and PDF."""
    parser.add_argument("--out", type=Path, metavar="DIR", help=f"folder to write into (default: {folder})")
    parser.add_argument(
        "--format",
        dest="formats",
        type=_formats,
        default=list(ALL_FORMATS),
        metavar="LIST",
        help="comma-separated formats among html,json,pdf (default: all three)",
    )
    add_json_flag(parser)


def register(subparsers: Any) -> None:
    report = subparsers.add_parser("report", help="the charter report for the committee, signed; verify a report")
    sub = report.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    charter = sub.add_parser(
        "charter",
        help="write the charter report of a period as HTML, JSON and PDF, each signed (.sig.json)",
        description=(
            "Write the charter report of a period for the Comité de la Gouvernance Numérique: the 21 "
            "engagements with their evidence and status, a summary per principle and per use case, the open "
            "risks and the audit chain head. Each file gets a .sig.json beside it: its SHA-256 signed with the "
            "ledger's Ed25519 key. Prints the paths written; PDF progress goes to stderr."
        ),
    )
    charter.add_argument(
        "--from", dest="start", metavar="DATE", help="first day, YYYY-MM-DD (default: six months before --to)"
    )
    charter.add_argument("--to", dest="end", metavar="DATE", help="last day, included, YYYY-MM-DD (default: now)")
    add_output_options(charter, "<CHARTER_REPORTS_DIR>/charte")
    charter.set_defaults(handler=_charter)

    verify = sub.add_parser(
        "verify",
        help="verify a report file against its .sig.json with the public key only",
        description=(
            "Recompute the SHA-256 of FILE and check the Ed25519 signature in FILE.sig.json with the public key "
            "only. Exit 0 when it verifies, 1 when the file or its signature does not match, 2 when the "
            "signature file is missing or unreadable."
        ),
    )
    verify.add_argument("file", type=Path, metavar="FILE", help="a report file written by `charter report charter`")
    verify.add_argument(
        "--public-key",
        type=Path,
        metavar="PATH",
        help="PEM Ed25519 public key (default: CHARTER_PUBLIC_KEY, else the current and retired public keys "
        "of CHARTER_KEYS_DIR)",
    )
    add_json_flag(verify)
    verify.set_defaults(handler=_verify)


def _progress(message: str) -> None:
    print(f"charter report: {message}", file=sys.stderr, flush=True)


def _charter(args: argparse.Namespace) -> int:
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.charter_document import build_document
    from charter_guardrails.reporting.charter_report import parse_period
    from charter_guardrails.reporting.report_files import default_folder, write_report
    from charter_guardrails.reporting.report_signing import signature_path

    start, end = parse_period(args.start, args.end)
    out_dir = args.out or default_folder()
    with ledger_session() as session:
        doc = build_document(session, start, end)
    written = write_report(doc, out_dir, args.formats, progress=_progress if "pdf" in args.formats else None)
    files = {fmt: {"path": str(path), "signature": str(signature_path(path))} for fmt, path in written.items()}
    head = doc["chain_head"]

    def human() -> str:
        lines = [str(path) for path in written.values()]
        lines += [str(signature_path(path)) for path in written.values()]
        return "\n".join(lines)

    emit(args, {"files": files, "period": doc.get("period"), "chain_head": head}, human)
    return EXIT_OK


def _public_keys(path: Path | None) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from charter_guardrails.core.errors import KeyError_

    if path is None:
        from charter_guardrails.core.keys import load_trusted_public_keys

        return load_trusted_public_keys()
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise KeyError_(f"cannot read the public key {path}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"{path} is not a PEM public key; give the signing_ed25519.pub of the ledger's keys") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyError_(f"{path} is not an Ed25519 public key; give the signing_ed25519.pub of the ledger's keys")
    return key


def _verify(args: argparse.Namespace) -> int:
    from charter_guardrails.reporting.report_signing import verify_report

    result = verify_report(args.file, _public_keys(args.public_key))
    if result.ok:
        head = result.chain_head or {}
        emit(
            args,
            result.to_json_dict(),
            f"ok: {args.file} is the report signed by key {result.key_id} on {result.signed_at}"
            f" (audit chain head {head.get('seq')}: {head.get('hash')})",
        )
        return EXIT_OK
    if not result.usable:
        advice = (
            f"keep the {result.signature_file.name} written beside the report, or write the report again with "
            "`charter report charter`"
            if args.file.is_file()
            else "give the path of a report file written by `charter report charter`"
        )
        message = f"cannot verify {args.file}: {result.reason}; {advice}"
        code = EXIT_USAGE
    else:
        message = (
            f"NOT VERIFIED: {args.file}: {result.reason}. Do not rely on this copy: get the original from whoever "
            "published it, or write the report again with `charter report charter`"
        )
        code = EXIT_FAILED
    if args.json:
        emit(args, result.to_json_dict(), message)
    print(f"charter: {message}", file=sys.stderr)
    return code
