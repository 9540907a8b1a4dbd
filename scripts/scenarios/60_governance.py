"""governance: what retention will delete and when, a data-subject search, the DPO's register entry and AIPD draft.

1. ``charter retention plan`` today deletes nothing; ``--as-of`` two years on lists the run's working copies,
   batches and reports past their lifetimes, and what open incidents keep (nothing is deleted here: the runs stay
   for the governance view; ``charter retention apply`` deletes, and the ``charter_retention`` DAG runs it daily);
2. ``charter dsr find`` looks for a person by e-mail in every use case and reports where they appear, with only a
   keyed hash of the value in the ledger and the report;
3. ``charter dpo register`` and ``charter dpo aipd`` write the DPO's documents of both use cases (HTML, JSON, PDF).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any


def _charter(*argv: str, stdin: str | None = None) -> tuple[int, Any]:
    """Run the CLI in-process with ``--json``; return (exit code, parsed output)."""
    from charter_guardrails.cli.main import main as charter

    out = io.StringIO()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = charter([*argv, "--json"])
    finally:
        sys.stdin = saved
    text = out.getvalue().strip()
    return code, (json.loads(text) if text else None)


def _retention(ctx: Any) -> None:
    code, today = _charter("retention", "plan")
    ctx.expect(code == 0 and today["delete_count"] == 0, "retention plan today: nothing is past its lifetime")
    later = (datetime.now(UTC) + timedelta(days=730)).date().isoformat()
    code, plan = _charter("retention", "plan", "--as-of", later)
    kinds = Counter(item["kind"] for item in plan["items"] if item["action"] == "delete")
    ctx.expect(
        code == 0 and kinds["working_copy"] > 0 and kinds["batch"] > 0,
        f"retention plan --as-of {later}: {plan['delete_count']} item(s) to delete "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), {plan['keep_count']} kept by open "
        "incidents or holds; `charter retention apply --as-of ... --yes` would delete them",
    )


def _dsr(ctx: Any) -> None:
    from charter_demo.canaries import Canaries

    person = Canaries.from_seed(20261204)  # a person who is not in the sample data
    code, found = _charter("dsr", "find", "--identifier", "-", "--type", "email", stdin=person.email + "\n")
    ctx.expect(
        code == 1 and not found["places"] and person.email not in json.dumps(found),
        f"dsr find by e-mail: found nowhere in {found['files_searched']} file(s); report and ledger keep only "
        f"the keyed hash {found['identifier_hash'].split(':')[-1][:12]}…",
    )


def _dpo(ctx: Any) -> None:
    code, register = _charter("dpo", "register")
    ctx.expect(code == 0 and len(register["documents"]) == 2, "dpo register: the Art. 30 entry of both use cases")
    for use_case in ("citizen_requests", "waste_tonnage"):
        code, aipd = _charter("dpo", "aipd", use_case)
        (doc,) = aipd["documents"]
        ctx.expect(
            code == 0 and set(doc["files"]) == {"html", "json", "pdf"},
            f"dpo aipd {use_case}: {doc['completeness']['human_only']} field(s) left for a person; "
            f"{doc['files']['html']['path']}",
        )


def run(ctx: Any) -> None:
    _retention(ctx)
    _dsr(ctx)
    _dpo(ctx)
