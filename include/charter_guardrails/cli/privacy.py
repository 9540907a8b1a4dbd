"""``charter scan`` and ``charter pseudonymise``: personal data in a file, against a policy or not."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_json_flag, summary_in, table
from charter_guardrails.core.messages import Template

if TYPE_CHECKING:
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.core.policy_models import Dataset


REPORT_ONLY = Template("No policy given: report only. %(with_pii)s of %(columns)s column(s) hold personal data.")


def register(subparsers: Any) -> None:
    scan = subparsers.add_parser(
        "scan",
        help="find personal data per column of a CSV/Parquet file (exit 1 on a policy violation)",
        description="Scan a file for personal data (French recognizers with checksums, NER on free text). "
        "Without --policy, "
        "report what each column holds and exit 0; with --policy, judge it and exit 1 on a violation, recording the "
        "result and any incident in the ledger. Examples are always masked.",
    )
    scan.add_argument("file", type=Path, metavar="FILE")
    scan.add_argument("--policy", type=Path, metavar="P", help="use-case policy file (YAML)")
    scan.add_argument(
        "--dataset", metavar="ID", help="dataset id in the policy (default: the one whose file matches, else training)"
    )
    scan.add_argument(
        "--exhaustive", action="store_true", help="analyse every distinct value instead of a random sample"
    )
    scan.add_argument(
        "--run-id", metavar="RUN", help="run id for the ledger and the report folder (default: cli__<UTC time>)"
    )
    scan.add_argument("--record", action="store_true", help="also record a passing result in the ledger")
    add_json_flag(scan)
    scan.set_defaults(handler=_scan)

    pseudo = subparsers.add_parser(
        "pseudonymise",
        help="write the training-ready copy: undeclared columns dropped, identifiers HMAC'd, free text masked",
        description="Keyed pseudonymisation with the key of `charter keys init` (or CHARTER_PSEUDONYMISATION_KEY).",
    )
    pseudo.add_argument("source", type=Path, metavar="IN")
    pseudo.add_argument("target", type=Path, metavar="OUT")
    pseudo.add_argument("--policy", type=Path, metavar="P", required=True)
    pseudo.add_argument("--dataset", metavar="ID", help="dataset id in the policy (default: training)")
    add_json_flag(pseudo)
    pseudo.set_defaults(handler=_pseudonymise)


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _pick_dataset(policy: UseCasePolicy, file: Path, dataset_id: str | None) -> Dataset:
    if dataset_id:
        return policy.dataset(dataset_id)
    stem = file.name.split("__", 1)[0].removesuffix(file.suffix)  # training__pii_leak.csv → training
    for dataset in policy.datasets:
        if dataset.path and Path(dataset.path).name.removesuffix(Path(dataset.path).suffix) == stem:
            return dataset
    return policy.training_dataset


def _close_run(use_case: str, run_id: str) -> None:
    """Close the command's run with its decision: no gate decides a command-line run, and the overview must not
    show it as running forever."""
    from charter_guardrails.ledger.store import decide_from_results, get_or_create_check_run, ledger_session

    with ledger_session() as session:
        decide_from_results(session, get_or_create_check_run(session, use_case=use_case, dag_id="cli", run_id=run_id))


def _read_error(exc: Exception) -> int:
    _note(f"charter: error: {exc}")
    return EXIT_USAGE


def _scan(args: argparse.Namespace) -> int:
    from charter_guardrails.core.errors import DatasetReadError
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.core.results import Verdict

    run_id = args.run_id or f"cli__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    policy = load_policy(args.policy) if args.policy else None
    dataset = _pick_dataset(policy, args.file, args.dataset) if policy is not None else None
    try:
        scan = _scan_file(args, policy, dataset)
    except DatasetReadError as exc:
        return _read_error(exc)
    if policy is None or dataset is None:
        outcome = _report_only(args, scan, run_id)
    else:
        outcome = _judge(scan, policy, dataset, run_id)
    _note(scan.guarantee)
    incident_id = None
    failed = outcome.result.verdict is Verdict.FAIL
    if policy is not None and (failed or args.record):
        from charter_guardrails.checks.privacy.verdict import persist_outcome

        incident_id, _ = persist_outcome(outcome, policy, dag_id="cli", run_id=run_id)
        _close_run(policy.id, run_id)
    if args.json:
        print(json.dumps(_column_entries(scan, outcome), indent=2, ensure_ascii=False))
    else:
        _print_findings(args, scan, outcome, judged=policy is not None)
    _note(f"reports: {outcome.reports.get('html')} and {outcome.reports.get('json')}")
    if incident_id is not None:
        _note(f"incident #{incident_id} recorded in the ledger (run {run_id})")
    return EXIT_FAILED if failed else EXIT_OK


def _scan_file(args: argparse.Namespace, policy: UseCasePolicy | None, dataset: Dataset | None) -> Any:
    """Scan the file as a stream (:mod:`~charter_guardrails.checks.privacy.stream`): in the policy's declared
    dialect, else in the dialect detected (and said), as the policy asks or in the mode asked."""
    from charter_guardrails.checks.privacy.report import ScanOptions
    from charter_guardrails.checks.privacy.stream import scan_dataset, scan_file
    from charter_guardrails.readers.files import detect_csv_dialect

    if policy is None or dataset is None:
        options = ScanOptions(mode="exhaustive" if args.exhaustive else "sampling")
        if args.file.suffix.lower() == ".parquet" or args.file.is_dir():
            return scan_file(args.file, options, parquet=True, source=args.file.name)
        dialect = detect_csv_dialect(args.file)
        scan = scan_file(args.file, options, dialect=dialect.as_policy_dialect(), parquet=False, source=args.file.name)
        _note(
            f"assumed: separator {dialect.separator!r}, decimal {dialect.decimal!r}, encoding {dialect.encoding}"
            + (f" ({'; '.join(dialect.notes)})" if dialect.notes else "")
        )
        return scan
    options = ScanOptions.from_policy(policy.privacy, dataset, exhaustive=True if args.exhaustive else None)
    scan = scan_dataset(dataset, args.file, options, source=args.file.name)
    _note(
        f"read as dataset {dataset.id!r} of {policy.id}: separator {dataset.csv.separator!r}, "
        f"encoding {dataset.csv.encoding} (declared by the policy)"
    )
    return scan


def _report_only(args: argparse.Namespace, scan: Any, run_id: str) -> Any:
    """Without a policy: what each column holds, a passing result, reports under ``_adhoc``."""
    from charter_guardrails.checks.privacy.report_files import write_reports
    from charter_guardrails.checks.privacy.verdict import PersonalDataOutcome
    from charter_guardrails.core.catalogue import CATALOGUE, CheckName
    from charter_guardrails.core.results import CheckResult, Verdict

    with_pii = [c.name for c in scan.columns if c.findings]
    result = CheckResult(
        check=CheckName.PERSONAL_DATA,
        verdict=Verdict.PASS,
        engagements=CATALOGUE[CheckName.PERSONAL_DATA].engagement_ids(),
        message=REPORT_ONLY(with_pii=len(with_pii), columns=len(scan.columns)),
        metrics={"rows": scan.rows, "scanned_rows": scan.scanned_rows, "columns_with_pii": len(with_pii)},
        dataset=None,
    )
    outcome = PersonalDataOutcome(result=result, scan=scan, columns=[])
    write_reports(outcome, use_case="_adhoc", run_id=run_id, name=args.file.stem)
    return outcome


def _judge(scan: Any, policy: UseCasePolicy, dataset: Dataset, run_id: str) -> Any:
    """With a policy: the scan judged column by column, with its reports."""
    from charter_guardrails.checks.privacy.report_files import write_reports
    from charter_guardrails.checks.privacy.verdict import evaluate

    outcome = evaluate(scan, policy, dataset, run_id=run_id)
    write_reports(outcome, use_case=policy.id, run_id=run_id)
    return outcome


def _column_entries(scan: Any, outcome: Any) -> list[dict[str, Any]]:
    """The ``--json`` output: each column's findings and suspects, and the policy's verdict on it."""
    verdicts = {c.column: c for c in outcome.columns}
    columns = []
    for column in scan.columns:
        entry: dict[str, Any] = {
            "name": column.name,
            "kind": column.kind,
            "rows": column.rows,
            "non_null": column.non_null,
            "findings": [f.to_json_dict() for f in column.findings],
            "suspects": [f.to_json_dict() for f in column.suspects],
        }
        if column.name in verdicts:
            v = verdicts[column.name]
            entry.update({"declared": v.declared, "allowed": v.allowed, "ok": v.ok, "reason": v.reason})
        columns.append(entry)
    return columns


def _print_findings(args: argparse.Namespace, scan: Any, outcome: Any, *, judged: bool) -> None:
    rows = [
        [
            c.name,
            c.kind,
            f.entity_type,
            f.count,
            f"{f.share:.1%}",
            f"{f.mean_score:.2f}",
            f"{f.max_score:.2f}",
            " | ".join(f.masked_examples),
        ]
        for c in scan.columns
        for f in c.findings
    ]
    print(
        table(rows, ["column", "kind", "entity", "rows", "share", "mean", "max", "masked examples"])
        if rows
        else "no personal data found"
    )
    if judged:
        for v in outcome.columns:
            if not v.ok:
                print(f"VIOLATION  {v.column}: {v.reason}")
        print(f"{outcome.result.verdict.value.upper()}: {summary_in(args, outcome.result)}")


def _pseudonymise(args: argparse.Namespace) -> int:
    from charter_guardrails.checks.privacy.pseudonymise import pseudonymise_file
    from charter_guardrails.core.errors import DatasetReadError
    from charter_guardrails.core.policy import load_policy

    policy = load_policy(args.policy)
    dataset = policy.dataset(args.dataset) if args.dataset else _pick_dataset(policy, args.source, None)
    if args.target.resolve() == args.source.resolve():
        _note("charter: error: OUT must differ from IN (the source is kept as registered)")
        return EXIT_USAGE
    try:
        report = pseudonymise_file(policy, dataset.id, args.source, args.target)
    except DatasetReadError as exc:
        return _read_error(exc)
    data = {"target": str(args.target), "dataset": dataset.id, **report.to_json_dict()}
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(f"wrote {args.target}: {report.rows} rows; kept {', '.join(report.kept_columns)}")
        print(f"  identifiers hashed (HMAC-SHA256): {', '.join(report.hashed_columns) or 'none'}")
        print(
            f"  free text masked: {', '.join(report.masked_columns) or 'none'} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(report.masked_entities.items())) or 'no entity'})"
        )
        print(f"  dropped (not declared): {', '.join(report.dropped_columns) or 'none'}")
    return EXIT_OK
