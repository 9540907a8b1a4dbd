"""``charter init USE_CASE --from FILE``: draft a use case's policy and quality suites from a team's data file.

The file is read with the project's readers, profiled and scanned for personal data (a sample of rows); the
policy skeleton holds TODO markers for what only people can declare, and ``charter policy validate`` refuses it
until they are all replaced. Nothing is overwritten without ``--force``, and every file is written or none.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.cli.main import EXIT_OK, add_json_flag, emit

if TYPE_CHECKING:
    from charter_guardrails.onboarding.draft import Drafts

#: Rows read before progress is reported on stderr (a small file is read silently).
PROGRESS_FROM_ROWS = 100_000


def register(subparsers: Any) -> None:
    init = subparsers.add_parser(
        "init",
        help="draft a use case's policy and quality suites from a data file (TODOs left for people to fill)",
        description=(
            "Profile FILE (CSV in a detected dialect, or Parquet), scan it for personal data, and write "
            "<policies_dir>/USE_CASE.yaml with TODO markers and the suites USE_CASE.training.json and "
            "USE_CASE.inference.json. Nothing is written if a file exists (use --force) or FILE cannot be read."
        ),
    )
    init.add_argument("use_case", metavar="USE_CASE", help="the use case id: lower-case letters, digits and '_'")
    init.add_argument("--from", dest="source", type=Path, required=True, metavar="FILE", help="the data file")
    init.add_argument("--force", action="store_true", help="overwrite the policy and suites if they exist")
    init.add_argument("--policies-dir", type=Path, metavar="DIR", help="default: the settings' policies folder")
    init.add_argument("--expectations-dir", type=Path, metavar="DIR", help="default: the settings' expectations folder")
    init.add_argument("--label", metavar="COLUMN", help="the column the model predicts (else a TODO)")
    add_json_flag(init)
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    from charter_guardrails.core.errors import ConfigError, DatasetReadError
    from charter_guardrails.core.policy import check_use_case_id
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.onboarding.draft import draft_use_case, summary, write_drafts

    check_use_case_id(args.use_case)
    settings = get_settings()
    policies_dir = args.policies_dir or settings.policies_dir
    expectations_dir = args.expectations_dir or settings.expectations_dir
    targets = [
        policies_dir / f"{args.use_case}.yaml",
        expectations_dir / f"{args.use_case}.training.json",
        expectations_dir / f"{args.use_case}.inference.json",
    ]
    taken = [p for p in targets if p.exists()]
    if taken and not args.force:  # before reading a large file for nothing
        raise ConfigError(
            f"{', '.join(map(str, taken))} already exist(s); nothing was written. Use --force to overwrite"
        )
    started = time.monotonic()
    try:
        drafts = draft_use_case(
            args.use_case,
            args.source,
            policies_dir=policies_dir,
            expectations_dir=expectations_dir,
            data_dir=settings.data_dir,
            label=args.label,
            progress=lambda rows: _progress(rows, started),
            say=_say,
        )
    except DatasetReadError as exc:
        raise ConfigError(f"{exc}; nothing was written") from None
    write_drafts(drafts, force=args.force)  # checks again: a file may have appeared while the data was read
    emit(args, summary(drafts), lambda: _human(drafts))
    return EXIT_OK


def _progress(rows: int, started: float) -> None:
    if rows >= PROGRESS_FROM_ROWS:
        print(f"charter init: {rows:,} rows read in {time.monotonic() - started:.0f} s", file=sys.stderr)


def _say(message: str) -> None:
    print(f"charter init: {message}", file=sys.stderr)


def _human(drafts: Drafts) -> str:
    """The summary: files written, columns, personal data found (counts), TODOs, what to do next."""
    lines = ["wrote:"] + [f"  {path}" for path in drafts.files]
    roles: dict[str, int] = {}
    for column in drafts.columns:
        roles[column.role.value] = roles.get(column.role.value, 0) + 1
    lines.append(
        f"{drafts.profile.rows:,} rows, {len(drafts.columns)} columns ("
        + ", ".join(f"{n} {role}" for role, n in sorted(roles.items()))
        + ")"
    )
    personal = drafts.personal_columns
    scanned = drafts.columns[0].scanned_rows if drafts.columns else 0
    if personal:
        lines.append(f"personal data found in {len(personal)} column(s) ({scanned:,} sampled rows):")
        lines += [
            f"  {c.name}: " + ", ".join(f"{entity} in {count} rows" for entity, count in c.entities) for c in personal
        ]
    else:
        lines.append(f"no personal data found ({scanned:,} sampled rows)")
    if drafts.copy_command:
        lines.append(f"the file is outside the data folder; copy it to {drafts.data_path} there:")
        lines.append(f"  {drafts.copy_command}")
    lines.append(f"{len(drafts.todos)} TODO(s) to fill in {drafts.policy_file}; then:")
    lines.append(f"  charter policy validate {drafts.policy_file}")
    return "\n".join(lines)
