"""``charter retention plan|apply`` (storage limitation) and ``charter hold add|remove|list`` (legal holds).

``plan`` lists what is past its retention and changes nothing; ``--as-of`` moves the clock to see what a later
run will delete. ``apply`` deletes it, each deletion recorded and audited before the file goes; it asks first
unless ``--yes`` (the ``charter_retention`` DAG calls the library directly). Paths printed are relative to the
state folders, with the names of delivered files as keyed hashes: the output carries no personal value.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from datetime import UTC, date, datetime
from typing import Any

from charter_guardrails.cli.main import EXIT_FAILED, EXIT_OK, add_json_flag, emit, table
from charter_guardrails.core.errors import ConfigError


def _actor(args: argparse.Namespace) -> str:
    return args.actor or os.environ.get("CHARTER_ACTOR") or getpass.getuser()


def _as_of(text: str) -> datetime:
    """An ISO date (midnight UTC) or date-time (UTC when it has no offset)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {text!r} (e.g. 2027-06-30)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def register(subparsers: Any) -> None:
    retention = subparsers.add_parser(
        "retention", help="delete what is past its retention (storage limitation), audited, except under a hold"
    )
    sub = retention.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    for name, helptext in (
        ("plan", "list every file past its retention and whether a hold keeps it; changes nothing"),
        ("apply", "delete every file past its retention that nothing keeps (each deletion audited first)"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--use-case", metavar="UC", help="only this use case (default: every valid policy)")
        p.add_argument(
            "--as-of",
            type=_as_of,
            metavar="ISO_DATE",
            help="read ages at this date instead of now, to preview what a later run deletes",
        )
        add_json_flag(p)
        if name == "apply":
            p.add_argument("--yes", action="store_true", help="delete without asking (needed when not on a terminal)")
            p.add_argument("--actor", help="who deletes, for the audit chain (default: $CHARTER_ACTOR or login name)")
        p.set_defaults(handler=_plan if name == "plan" else _apply)
    _register_holds(subparsers)


def _register_holds(subparsers: Any) -> None:
    hold = subparsers.add_parser(
        "hold", help="legal holds: files retention must keep (a use case, dataset, version, run)"
    )
    sub = hold.add_subparsers(dest="hold_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="place a legal hold (audited)")
    add.add_argument("--use-case", required=True, metavar="UC")
    scope = add.add_mutually_exclusive_group()
    scope.add_argument("--dataset", metavar="D", help="hold this dataset's batch files only")
    scope.add_argument("--model-version", type=int, metavar="N", help="hold version N's artifact and its run's folders")
    scope.add_argument("--run", metavar="R", help="hold this run's folders and quarantined batches")
    add.add_argument("--reason", required=True, help="why the files must be kept (recorded in the audit chain)")
    add.add_argument("--actor", help="who places it (default: $CHARTER_ACTOR or the login name)")
    add_json_flag(add)
    add.set_defaults(handler=_hold_add)
    remove = sub.add_parser("remove", help="lift a legal hold (audited); its record stays")
    remove.add_argument("hold_id", type=int, metavar="ID")
    remove.add_argument("--reason", required=True, help="why the hold is lifted (recorded in the audit chain)")
    remove.add_argument("--actor", help="who lifts it (default: $CHARTER_ACTOR or the login name)")
    add_json_flag(remove)
    remove.set_defaults(handler=_hold_remove)
    lst = sub.add_parser("list", help="the legal holds (open ones; --all for the lifted ones too)")
    lst.add_argument("--use-case", metavar="UC")
    lst.add_argument("--all", action="store_true", help="also the holds already lifted")
    add_json_flag(lst)
    lst.set_defaults(handler=_hold_list)


def _now(args: argparse.Namespace) -> datetime:
    return args.as_of or datetime.now(UTC)


def _check_use_case(use_case: str | None) -> None:
    if use_case is not None:
        from charter_guardrails.core.policy import load_policy

        load_policy(use_case)  # a ConfigError or PolicyError names what is wrong


def _plan_text(current: Any) -> str:
    rows = [
        [
            p.action,
            p.item.kind,
            p.item.use_case,
            p.item.label,
            f"{p.age_days:.0f}",
            p.item.rule,
            _size(p.content.size_bytes),
            "; ".join(p.kept_because) or "-",
        ]
        for p in current.items
    ]
    head = table(rows, ["action", "kind", "use case", "path", "age (days)", "rule", "size", "kept because"])
    lines = [head] if rows else [f"nothing is past its retention at {current.as_of:%Y-%m-%d %H:%M} UTC"]
    lines.append(
        f"{current.count('delete')} to delete ({_size(current.bytes('delete'))}), "
        f"{current.count('finish')} recorded deletions to finish, {current.count('keep')} kept "
        f"({_size(current.bytes('keep'))}), as of {current.as_of:%Y-%m-%d %H:%M} UTC"
    )
    lines += [f"skipped {uc}: {why}" for uc, why in current.skipped.items()]
    return "\n".join(lines)


def _plan(args: argparse.Namespace) -> int:
    from charter_guardrails.retention import plan

    _check_use_case(args.use_case)
    current = plan(_now(args), use_case=args.use_case, measured=_measured())
    emit(args, current.to_json_dict(), lambda: _plan_text(current))
    return EXIT_OK


def _confirm(args: argparse.Namespace) -> bool:
    """Ask before deleting, on a terminal; refuse to guess elsewhere."""
    from charter_guardrails.retention import plan

    if args.yes:
        return True
    if args.json or not sys.stdin.isatty():
        raise ConfigError("`charter retention apply` deletes files: pass --yes (see `charter retention plan` first)")
    current = plan(_now(args), use_case=args.use_case, measured=_measured())
    print(_plan_text(current))
    if not current.count("delete") and not current.count("finish"):
        return True
    answer = input(f"delete these {current.count('delete')} items? [y/N] ")
    return answer.strip().lower() in {"y", "yes", "o", "oui"}


def _measured() -> Any:
    """Progress of a long plan on stderr, at most once a second: how many expired items are hashed so far."""
    last = [time.monotonic()]

    def report(count: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            print(f"retention: {count} items past their retention measured so far", file=sys.stderr, flush=True)

    return report


def _progress() -> Any:
    last = [0.0]

    def report(done: int, total: int, deleted_bytes: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= 1.0:
            last[0] = now
            print(f"retention: {done}/{total} deleted ({_size(deleted_bytes)})", file=sys.stderr, flush=True)

    return report


def _apply(args: argparse.Namespace) -> int:
    from charter_guardrails.retention import apply

    _check_use_case(args.use_case)
    if not _confirm(args):
        print("nothing deleted", file=sys.stderr)
        return EXIT_OK
    report = apply(_now(args), use_case=args.use_case, actor=_actor(args), progress=_progress())
    data = report.to_json_dict()
    emit(
        args,
        data,
        lambda: "\n".join(
            [
                f"deleted {report.deleted} items ({_size(report.deleted_bytes)}); finished {report.finished} "
                f"interrupted deletions; kept {data['kept']} under a hold or an open incident",
                *[f"could not delete {label} (recorded; the next run tries again)" for label in report.failed],
            ]
        ),
    )
    return EXIT_FAILED if report.failed else EXIT_OK


def _hold_dict(hold: Any) -> dict[str, Any]:
    from charter_guardrails.retention.holds import scope_of

    return {
        "id": hold.id,
        "use_case": hold.use_case,
        "scope": scope_of(hold),
        "dataset": hold.dataset,
        "model_version": hold.model_version,
        "run_id": hold.run_id,
        "reason": hold.reason,
        "created_by": hold.created_by,
        "created_at": hold.created_at.isoformat(),
        "released_by": hold.released_by,
        "released_at": hold.released_at.isoformat() if hold.released_at else None,
        "release_reason": hold.release_reason,
    }


def _hold_add(args: argparse.Namespace) -> int:
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.decision.model_registry import versions
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.retention import add_hold

    policy = load_policy(args.use_case)
    if args.dataset is not None:
        policy.dataset(args.dataset)  # a ConfigError lists the declared datasets
    with ledger_session() as session:
        if args.model_version is not None and args.model_version not in {
            v.version for v in versions(session, policy.id)
        }:
            raise ConfigError(f"{policy.id} has no model version {args.model_version}; see `charter model list`")
        hold = _hold_dict(
            add_hold(
                session,
                use_case=policy.id,
                reason=args.reason,
                actor=_actor(args),
                dataset=args.dataset,
                model_version=args.model_version,
                run_id=args.run,
            )
        )
    emit(args, hold, f"legal hold #{hold['id']} placed on {hold['use_case']} ({hold['scope']})")
    return EXIT_OK


def _hold_remove(args: argparse.Namespace) -> int:
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.retention import remove_hold

    with ledger_session() as session:
        hold = _hold_dict(remove_hold(session, args.hold_id, reason=args.reason, actor=_actor(args)))
    emit(args, hold, f"legal hold #{hold['id']} on {hold['use_case']} ({hold['scope']}) removed")
    return EXIT_OK


def _hold_list(args: argparse.Namespace) -> int:
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.retention import holds

    with ledger_session() as session:
        rows = [_hold_dict(h) for h in holds(session, args.use_case, active_only=not args.all)]
    emit(
        args,
        rows,
        lambda: (
            table(
                [
                    [f"#{r['id']}", r["use_case"], r["scope"], r["created_by"], r["created_at"][:10], r["released_at"]]
                    for r in rows
                ],
                ["hold", "use case", "scope", "placed by", "since", "removed"],
            )
            if rows
            else "no legal hold"
        ),
    )
    return EXIT_OK
