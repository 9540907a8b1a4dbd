"""``charter policy``, ``charter ledger``, ``charter keys`` and ``charter audit``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_json_flag, emit

if TYPE_CHECKING:
    from charter_guardrails.ledger.audit_verify import Verification


def register(subparsers: Any) -> None:
    policy = subparsers.add_parser("policy", help="use-case policies")
    policy_sub = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    validate = policy_sub.add_parser("validate", help="validate policy files (exit 2 on the first invalid one)")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_json_flag(validate)
    validate.set_defaults(handler=_policy_validate)
    schema = policy_sub.add_parser("schema", help="print the JSON schema of a policy file")
    schema.add_argument("--write", type=Path, metavar="FILE", help="write it to FILE instead of stdout")
    schema.set_defaults(handler=_policy_schema)

    ledger = subparsers.add_parser("ledger", help="the audit ledger database")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    migrate = ledger_sub.add_parser("migrate", help="create or upgrade the ledger schema (alembic)")
    add_json_flag(migrate)
    migrate.set_defaults(handler=_ledger_migrate)

    keys = subparsers.add_parser("keys", help="signing and pseudonymisation keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    init = keys_sub.add_parser("init", help="create local keys in CHARTER_KEYS_DIR (kept if they exist)")
    init.add_argument(
        "--force",
        action="store_true",
        help="replace existing keys (the old public key stays trusted in retired/; pseudonyms change)",
    )
    add_json_flag(init)
    init.set_defaults(handler=_keys_init)
    rotate = keys_sub.add_parser(
        "rotate", help="a new signing key; the old public key stays trusted, the pseudonymisation key is kept"
    )
    add_json_flag(rotate)
    rotate.set_defaults(handler=_keys_rotate)

    _register_audit(subparsers)


def _register_audit(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="the tamper-evident audit chain")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser(
        "verify",
        help="verify the chain with the public key only, from the last signed verification on (exit 1 if broken)",
    )
    verify.add_argument(
        "--full",
        action="store_true",
        help="re-check every event from the first one (the integrity monitor does it once a day)",
    )
    add_json_flag(verify)
    verify.set_defaults(handler=_audit_verify)
    seal = audit_sub.add_parser(
        "seal",
        help="record once in the chain the check runs and alerts a ledger held before they were audited "
        "(needs the signing key; check the rows first)",
    )
    seal.add_argument(
        "--all",
        action="store_true",
        dest="everything",
        help="also seal unrecorded rows newer than the first audited row of their table (after checking them)",
    )
    add_json_flag(seal)
    seal.set_defaults(handler=_audit_seal)
    log = audit_sub.add_parser("log", help="print the latest audit events")
    log.add_argument("--limit", type=int, default=20)
    add_json_flag(log)
    log.set_defaults(handler=_audit_log)


def _policy_validate(args: argparse.Namespace) -> int:
    """Validate each file; a drafted policy's open TODOs are listed one per line, by key path (exit 2)."""
    from charter_guardrails.core.errors import PolicyError
    from charter_guardrails.core.policy import load_policy

    results: list[dict[str, Any]] = []
    status = EXIT_OK
    for path in args.files:
        try:
            policy = load_policy(Path(path))
            results.append({"file": str(path), "ok": True, "use_case": policy.id})
        except PolicyError as exc:
            results.append({"file": str(path), "ok": False, **exc.to_json_dict()})
            status = EXIT_USAGE

    def human() -> str:
        lines = []
        for r in results:
            if r["ok"]:
                lines.append(f"ok       {r['file']} ({r['use_case']})")
            elif r.get("todos"):
                lines.extend(f"todo     {r['file']}: {t['key']}: {t['text']}" for t in r["todos"])
                lines.append(
                    f"invalid  {r['file']}: {len(r['todos'])} open TODO(s): replace each one with the value it asks "
                    "for, then validate again"
                )
            else:
                lines.extend(f"invalid  {r['file']}: {e['key'] or '<file>'}: {e['reason']}" for e in r["errors"])
        return "\n".join(lines)

    if status != EXIT_OK and not args.json:
        import sys

        print(human(), file=sys.stderr)
        return status
    emit(args, results, human)
    return status


def _policy_schema(args: argparse.Namespace) -> int:
    from charter_guardrails.core.policy import json_schema

    if args.write:
        args.write.write_text(json_schema(), encoding="utf-8")
        print(f"wrote {args.write}")
    else:
        print(json_schema(), end="")
    return EXIT_OK


def _ledger_migrate(args: argparse.Namespace) -> int:
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.ledger.db import migrate, redact_url

    url = get_settings().ledger_url
    before, after = migrate(url)
    emit(
        args,
        {"url": redact_url(url), "from": before, "to": after},
        f"ledger {redact_url(url)}: {before or 'empty'} -> {after}"
        if before != after
        else f"ledger {redact_url(url)} is up to date ({after})",
    )
    return EXIT_OK


def _keys_init(args: argparse.Namespace) -> int:
    from charter_guardrails.core.keys import init_keys

    result = init_keys(force=args.force)
    emit(
        args,
        {"keys_dir": str(result.keys_dir), "created": result.created, "kept": result.kept, "key_id": result.key_id},
        f"keys in {result.keys_dir} (key id {result.key_id}): "
        f"created {result.created or 'none'}, kept {result.kept or 'none'}",
    )
    return EXIT_OK


def _keys_rotate(args: argparse.Namespace) -> int:
    from charter_guardrails.core.keys import rotate_signing_key
    from charter_guardrails.core.settings import get_settings

    retired, current = rotate_signing_key()
    emit(
        args,
        {"keys_dir": str(get_settings().keys_dir), "retired_key_id": retired, "key_id": current},
        f"signing key rotated: new key id {current}; key {retired} retired (still trusted to verify what it signed)",
    )
    return EXIT_OK


def _audit_verify(args: argparse.Namespace) -> int:
    from charter_guardrails.ledger.audit_verify import run_verification

    verification = run_verification(full=args.full, progress=_verify_progress)
    report = verification.report

    def human() -> str:
        if report.ok:
            lines = [f"audit chain intact: {report.events} events, head {report.head_seq}, every head signed"]
        else:
            first = report.first_broken
            assert first is not None  # noqa: S101 - a broken chain has a first broken event
            lines = [
                f"audit chain BROKEN: first broken event {first.seq}"
                + (f" ({first.subject})" if first.subject else "")
                + f": {first.reason}"
            ]
            lines += [
                f"  - event {p.seq}{' ' + p.subject if p.subject else ''}: {p.reason}" for p in report.problems[1:20]
            ]
            hidden = len(report.problems) - 20 + report.problems_omitted
            if hidden > 0:
                lines.append(f"  ... and {hidden} more")
        lines.append(_verify_scope(verification))
        return "\n".join(lines)

    emit(args, verification.to_json_dict(), human)
    return EXIT_OK if report.ok else EXIT_FAILED


def _audit_seal(args: argparse.Namespace) -> int:
    from charter_guardrails.ledger.audit_seal import seal
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        report = seal(session, everything=args.everything)

    def human() -> str:
        lines = [f"sealed {n} row(s) of {table}" for table, n in report.sealed.items()]
        lines += [
            f"left {n} unrecorded row(s) of {table} newer than its first audited row (ids {report.left_ids[table]}"
            f"{', ...' if n > len(report.left_ids[table]) else ''}): inserted outside the ledger? check them; "
            "`charter audit seal --all` seals them too"
            for table, n in report.left.items()
            if n
        ]
        return "\n".join(lines)

    emit(args, report.to_json_dict(), human)
    return EXIT_OK if not any(report.left.values()) else EXIT_FAILED


def _verify_progress(rows: int, seconds: float) -> None:
    import sys

    print(f"audit verify: {rows:,} events read in {seconds:.0f} s ({rows / seconds:,.0f} rows/s)", file=sys.stderr)


def _verify_scope(verification: Verification) -> str:
    """What was verified this time, and the last full verification."""
    report = verification.report
    if report.mode == "full":
        scope = f"full verification: {report.checked} events read in {report.seconds:.1f} s"
    else:
        since = f"after event {report.since_seq}" if report.since_seq else "from the first event"
        scope = (
            f"incremental verification: {report.checked} events {since}"
            f" in {report.seconds:.1f} s (`--full` re-checks every event)"
        )
    if not verification.recorded:
        scope += f"; not recorded: {verification.not_recorded}"
    last = verification.last_full
    if last is None:
        return scope + "\nlast full verification: never; run `charter audit verify --full`"
    result = (
        "intact" if last["ok"] else f"BROKEN ({last['problems']} problem(s), first at event {last['first_broken']})"
    )
    forged = "" if last["authentic"] is not False else " - its record has an INVALID signature"
    return scope + f"\nlast full verification: {last['at']}, {result}, {last['events']} events{forged}"


def _audit_log(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from charter_guardrails.cli.main import table
    from charter_guardrails.ledger.models import AuditEvent
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(args.limit)))
        rows = [
            {
                "seq": e.seq,
                "ts": e.ts.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "use_case": e.use_case,
                "run_id": e.run_id,
                "subject": f"{e.subject_type}#{e.subject_id}" if e.subject_type else None,
            }
            for e in reversed(events)
        ]
    emit(args, rows, lambda: table([list(r.values()) for r in rows], list(rows[0].keys()) if rows else ["seq"]))
    return EXIT_OK
