"""``charter data generate``: the deterministic sample data and its bad variants."""

from __future__ import annotations

import argparse
from typing import Any

from charter_guardrails.cli.main import EXIT_OK, add_json_flag, emit, table


def register(subparsers: Any) -> None:
    data = subparsers.add_parser("data", help="sample data for the use cases")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="write the sample datasets and their bad variants into the data folder")
    gen.add_argument("--rows", type=int, default=4000, help="rows of the citizen_requests training set (default 4000)")
    gen.add_argument("--seed", type=int, default=None, help="random seed (default: the project's fixed seed)")
    gen.add_argument("--use-case", action="append", dest="use_cases", help="only these use cases (repeatable)")
    add_json_flag(gen)
    gen.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    from charter_demo.sample_data import DEFAULT_SEED, generate

    from charter_guardrails.core.policy import load_policy, policy_files
    from charter_guardrails.core.settings import get_settings

    policies = {p.id: p for p in (load_policy(f) for f in policy_files())}
    if args.use_cases:
        policies = {k: v for k, v in policies.items() if k in args.use_cases}
    settings = get_settings()
    files = generate(
        settings.data_dir, policies, seed=args.seed if args.seed is not None else DEFAULT_SEED, rows=args.rows
    )
    rows = [[f.use_case, f.name, f.rows, f.description] for f in files]
    emit(
        args,
        [{"use_case": f.use_case, "file": str(f.path), "rows": f.rows, "description": f.description} for f in files],
        lambda: f"sample data in {settings.data_dir}\n" + table(rows, ["use case", "file", "rows", "what"]),
    )
    return EXIT_OK
