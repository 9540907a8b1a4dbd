"""``charter dpo register`` (the Art. 30 register entry of each use case) and ``charter dpo aipd`` (a draft impact
assessment of one use case): the DPO's documents, drafted from the policies and the ledger, as signed HTML, JSON
and PDF files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from charter_guardrails.cli.main import EXIT_OK, emit
from charter_guardrails.cli.report import add_output_options


def register(subparsers: Any) -> None:
    dpo = subparsers.add_parser("dpo", help="the DPO's documents: Art. 30 register entries, draft impact assessments")
    sub = dpo.add_subparsers(dest="dpo_command", metavar="ACTION", required=True)
    entry = sub.add_parser(
        "register",
        help="write the GDPR Art. 30 register entry of each use case (or one) as signed HTML, JSON and PDF",
        description=(
            "Write the register entry (GDPR Art. 30(1) a-g) of each use case of the policies folder, or of "
            "--use-case: controller, purposes, legal basis, data subjects and personal data, recipients, transfers, "
            "retention, security measures, DPO. Values come from the policy (with their key path) or from what the "
            "software does; a key the policy's register section does not declare is listed as missing, and what "
            "only a person can fill is marked. Each file gets a .sig.json beside it."
        ),
    )
    entry.add_argument("--use-case", metavar="ID", help="only this use case (default: every policy)")
    add_output_options(entry, "<CHARTER_REPORTS_DIR>/dpo")
    entry.set_defaults(handler=_register_entries)

    aipd = sub.add_parser(
        "aipd",
        help="write a draft impact assessment (AIPD, CNIL PIA method) of a use case as signed HTML, JSON and PDF",
        description=(
            "Write the draft AIPD of USE_CASE: context, fundamental principles, risks, measures, pre-filled from the "
            "policy and the ledger's history (checks and verdicts, incidents, drift and fairness results: counts "
            "only). Likelihood, severity, opinions and validation are left for a person and marked as such."
        ),
    )
    aipd.add_argument("use_case", metavar="USE_CASE", help="the use case id (a policy of the policies folder)")
    add_output_options(aipd, "<CHARTER_REPORTS_DIR>/dpo")
    aipd.set_defaults(handler=_aipd)


def _progress(message: str) -> None:
    print(f"charter dpo: {message}", file=sys.stderr, flush=True)


def _write(kind: str, use_cases: list[str], args: argparse.Namespace) -> int:
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.dpo_aipd import build_aipd
    from charter_guardrails.reporting.dpo_files import default_folder, wanted_formats, write_dpo_document
    from charter_guardrails.reporting.dpo_register import build_register_entry
    from charter_guardrails.reporting.report_signing import signature_path

    wanted_formats(args.formats)
    out_dir = args.out or default_folder()
    build = build_register_entry if kind == "register" else build_aipd
    documents = []
    for use_case in use_cases:
        policy = load_policy(use_case)
        with ledger_session() as session:
            doc = build(policy, session)
        written = write_dpo_document(doc, out_dir, args.formats, progress=_progress if "pdf" in args.formats else None)
        documents.append(
            {
                "use_case": use_case,
                "completeness": doc["completeness"],
                "files": {f: {"path": str(p), "signature": str(signature_path(p))} for f, p in written.items()},
            }
        )

    def human() -> str:
        lines = []
        for item in documents:
            done = item["completeness"]
            missing = ", ".join(done["missing"]) or "none"
            lines.append(
                f"{item['use_case']}: {done['human_only']} field(s) for a person to fill; "
                f"policy keys not declared: {missing}"
            )
            lines += [f"  {f['path']}" for f in item["files"].values()]
        return "\n".join(lines)

    emit(args, {"documents": documents}, human)
    return EXIT_OK


def _register_entries(args: argparse.Namespace) -> int:
    from charter_guardrails.core.errors import ConfigError
    from charter_guardrails.core.policy import check_use_case_id, policy_files

    if args.use_case:
        check_use_case_id(args.use_case)
        use_cases = [args.use_case]
    else:
        use_cases = [path.stem for path in policy_files()]
        if not use_cases:
            raise ConfigError(
                "no policy in the policies folder (CHARTER_POLICIES_DIR): write one with `charter init` first"
            )
    return _write("register", use_cases, args)


def _aipd(args: argparse.Namespace) -> int:
    from charter_guardrails.core.policy import check_use_case_id

    check_use_case_id(args.use_case)
    return _write("aipd", [args.use_case], args)
