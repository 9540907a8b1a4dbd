"""``charter model suspend|resume|list`` (the kill switch) and ``charter runs list``."""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

from charter_guardrails.cli.main import EXIT_OK, add_json_flag, emit, table


def _actor(args: argparse.Namespace) -> str:
    return args.actor or os.environ.get("CHARTER_ACTOR") or getpass.getuser()


def register(subparsers: Any) -> None:
    model = subparsers.add_parser("model", help="model versions and the kill switch")
    sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    for name, helptext in (
        ("suspend", "suspend the production model: inference and refreshes stop"),
        ("resume", "resume a suspended production model"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("use_case", metavar="USE_CASE")
        p.add_argument("--reason", required=True, help="why (recorded in the audit chain)")
        p.add_argument("--actor", help="who decides (default: $CHARTER_ACTOR or the login name)")
        add_json_flag(p)
        p.set_defaults(handler=_suspend if name == "suspend" else _resume)
    lst = sub.add_parser("list", help="versions per use case, which is in production, and whether it is suspended")
    lst.add_argument("--use-case")
    add_json_flag(lst)
    lst.set_defaults(handler=_list_models)

    runs = subparsers.add_parser("runs", help="guardrail runs and their decisions")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    rl = runs_sub.add_parser("list", help="each run: use case, DAG run, decision, blocking guardrails, reports")
    rl.add_argument("--use-case")
    rl.add_argument("--limit", type=int, default=50)
    add_json_flag(rl)
    rl.set_defaults(handler=_list_runs)


def _version_dict(v: Any) -> dict[str, Any]:
    return {
        "use_case": v.use_case,
        "version": v.version,
        "status": v.status,
        "suspended": v.suspended,
        "suspended_by": v.suspended_by,
        "suspend_reason": v.suspend_reason,
        "approved_by": v.approved_by,
        "run_id": v.run_id,
        "metrics": v.metrics,
        "card_path": v.card_path,
        "created_at": v.created_at.isoformat(),
    }


def _suspend(args: argparse.Namespace) -> int:
    from charter_guardrails.decision.model_registry import suspend
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        version = _version_dict(suspend(session, args.use_case, actor=_actor(args), reason=args.reason))
    emit(
        args, version, f"{args.use_case}: production model v{version['version']} SUSPENDED by {version['suspended_by']}"
    )
    return EXIT_OK


def _resume(args: argparse.Namespace) -> int:
    from charter_guardrails.decision.model_registry import resume
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        version = _version_dict(resume(session, args.use_case, actor=_actor(args), reason=args.reason))
    emit(args, version, f"{args.use_case}: production model v{version['version']} resumed")
    return EXIT_OK


def _list_models(args: argparse.Namespace) -> int:
    from charter_guardrails.decision.model_registry import versions
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        rows = [_version_dict(v) for v in versions(session, args.use_case)]
    emit(
        args,
        rows,
        lambda: (
            table(
                [
                    [
                        r["use_case"],
                        f"v{r['version']}",
                        r["status"],
                        "SUSPENDED" if r["suspended"] else "",
                        r["approved_by"],
                        r["card_path"],
                    ]
                    for r in rows
                ],
                ["use case", "version", "status", "kill switch", "approved by", "model card"],
            )
            if rows
            else "no model version yet"
        ),
    )
    return EXIT_OK


def _list_runs(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from charter_guardrails.ledger.models import CheckRun
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        query = select(CheckRun).order_by(CheckRun.id.desc()).limit(args.limit)
        if args.use_case:
            query = query.where(CheckRun.use_case == args.use_case)
        rows: list[dict[str, Any]] = [
            {
                "use_case": r.use_case,
                "dag_id": r.dag_id,
                "run_id": r.run_id,
                "decision": r.decision or ("no gate" if r.finished_at is None else "-"),
                "blocked_by": r.blocked_by,
                "reports": r.reports,
                "started_at": r.started_at.isoformat(),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            }
            for r in session.scalars(query)
        ]
    rows.reverse()
    emit(
        args,
        rows,
        lambda: (
            table(
                [
                    [
                        r["use_case"],
                        r["dag_id"],
                        r["run_id"],
                        r["decision"],
                        ", ".join(r["blocked_by"]) or "-",
                        ", ".join(f"{k}: {v}" for k, v in (r["reports"] or {}).items()) or "-",
                    ]
                    for r in rows
                ],
                ["use case", "dag", "run", "decision", "blocked by", "reports"],
            )
            if rows
            else "no run yet"
        ),
    )
    return EXIT_OK
