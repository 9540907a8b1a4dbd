"""``charter validate``, ``charter drift`` and ``charter representativeness``: the data quality checks.

Each records its CheckResult in the ledger (dag ``cli``) and exits 1 on a failing verdict.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from charter_guardrails.cli.main import EXIT_FAILED, EXIT_OK, add_json_flag, emit, summary_in, table
from charter_guardrails.core.errors import UsageError


def register(subparsers: Any) -> None:
    validate = subparsers.add_parser(
        "validate", help="validate a file or a SQL table against its Great Expectations suite"
    )
    validate.add_argument(
        "file", nargs="?", type=Path, metavar="FILE", help="CSV (the policy's dialect) or Parquet file"
    )
    validate.add_argument("--table", metavar="T", help="validate this SQL table in the database instead (SQL pushdown)")
    validate.add_argument("--url", metavar="URL", help="database of --table (default CHARTER_DATA_URL)")
    validate.add_argument("--suite", metavar="S", help="suite file in expectations/ (default: the dataset's suite)")
    _common(validate)
    validate.add_argument(
        "--write-profile", action="store_true", help="training data: also store the drift reference profile"
    )
    validate.set_defaults(handler=_validate)

    drift = subparsers.add_parser("drift", help="compare an inference batch with the training reference")
    drift.add_argument("batch", type=Path, metavar="BATCH", help="the inference batch file")
    drift.add_argument(
        "--reference",
        type=Path,
        required=True,
        metavar="R",
        help="a stored profile (.json) or a training file, profiled once and stored",
    )
    _common(drift)
    drift.set_defaults(handler=_drift)

    rep = subparsers.add_parser(
        "representativeness", help="group shares, sizes and base rates of training data vs the reference"
    )
    rep.add_argument("file", type=Path, metavar="FILE")
    _common(rep)
    rep.set_defaults(handler=_representativeness)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, metavar="P", help="policy file, or a use case id")
    parser.add_argument("--dataset", metavar="ID", help="dataset id in the policy")
    parser.add_argument("--run-id", metavar="RUN", help="ledger run id (default: a new cli__<time> id)")
    add_json_flag(parser)


def _policy(value: str) -> Any:
    from charter_guardrails.core.policy import load_policy

    return load_policy(Path(value) if value.endswith((".yaml", ".yml")) or Path(value).exists() else value)


def _record(policy: Any, result: Any, run_id: str) -> None:
    """Record the result and close the command's run with its decision (no gate decides a command-line run)."""
    from charter_guardrails.ledger.store import (
        decide_from_results,
        get_or_create_check_run,
        ledger_session,
        record_check_result,
    )

    with ledger_session() as session:
        run = get_or_create_check_run(session, use_case=policy.id, dag_id="cli", run_id=run_id)
        record_check_result(session, run, result, actor="cli")
        decide_from_results(session, run, actor="cli")


def _report(
    args: argparse.Namespace, policy: Any, result: Any, run_id: str, extra_lines: list[str] | None = None
) -> int:
    from charter_guardrails.checks.quality.checks import with_json_report

    result = with_json_report(result, policy, run_id)
    _record(policy, result, run_id)

    def human() -> str:
        lines = [
            f"{result.check} {result.verdict.value.upper()}  {policy.id}/{result.dataset or '-'}  (run {run_id})",
            f"  {summary_in(args, result)}",
        ]
        lines += extra_lines or []
        if result.report_path:
            lines.append(f"  report: {result.report_path}")
        return "\n".join(lines)

    emit(args, {"run_id": run_id, "use_case": policy.id, **result.to_json_dict()}, human)
    return EXIT_FAILED if result.failed else EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from charter_guardrails.checks.quality.checks import profile_training
    from charter_guardrails.checks.quality.runner import validate_file, validate_table
    from charter_guardrails.checks.quality.suite_run import safe_run_name

    if bool(args.file) == bool(args.table):
        raise UsageError("give either FILE or --table T")
    policy = _policy(args.policy)
    dataset = args.dataset or _dataset_for_suite(policy, args.suite)
    run_id = args.run_id or safe_run_name(None)
    if args.table:
        result = validate_table(policy, dataset, args.table, url=args.url, suite=args.suite, run_id=run_id)
    else:
        result = validate_file(policy, dataset, args.file, suite=args.suite, run_id=run_id)
    failed = [o for o in result.evidence.get("expectations", []) if not o["success"]]
    lines = []
    if failed:
        rows = [
            [
                o["index"],
                o["severity"],
                o["expectation"].removeprefix("expect_"),
                ",".join(o["columns"]),
                o["result"].get("unexpected_count", o.get("error", o["result"].get("observed_value", ""))),
            ]
            for o in failed
        ]
        lines.append(
            "  "
            + table(rows, ["#", "severity", "expectation", "columns", "unexpected / observed"]).replace("\n", "\n  ")
        )
    if args.write_profile and args.file and not result.failed and dataset == policy.training_dataset.id:
        lines.append(f"  drift reference profile: {profile_training(policy, args.file)}")
    return _report(args, policy, result, run_id, lines)


def _dataset_for_suite(policy: Any, suite: str | None) -> str:
    if suite:
        for dataset in policy.datasets:
            if dataset.suite and Path(suite).name == dataset.suite:
                return str(dataset.id)
    return str(policy.training_dataset.id)


def _drift(args: argparse.Namespace) -> int:
    from charter_guardrails.checks.quality.checks import drift_of_file
    from charter_guardrails.checks.quality.suite_run import safe_run_name

    policy = _policy(args.policy)
    run_id = args.run_id or safe_run_name(None)
    result = drift_of_file(policy, args.batch, reference=args.reference, dataset=args.dataset)
    features = result.evidence.get("features", {})
    rows = [[name, f["kind"], _stat(f), "DRIFT" if f["drifted"] else "ok"] for name, f in features.items()]
    lines = ["  " + table(rows, ["feature", "kind", "statistics", ""]).replace("\n", "\n  ")] if rows else []
    return _report(args, policy, result, run_id, lines)


def _stat(feature: dict[str, Any]) -> str:
    if feature["kind"] == "numeric":
        return f"PSI {feature['psi']:.3f}, KS p={feature['ks_pvalue']:.2g}"
    if feature["kind"] == "categorical":
        return f"JS {feature['js_distance']:.3f}, chi2 p={feature['chi2_pvalue']:.2g}"
    return f"length PSI {feature['length_psi']:.3f}, OOV {feature['oov_share']:.0%}"


def _representativeness(args: argparse.Namespace) -> int:
    from charter_guardrails.checks.quality.checks import representativeness_of_file
    from charter_guardrails.checks.quality.suite_run import safe_run_name

    policy = _policy(args.policy)
    run_id = args.run_id or safe_run_name(None)
    result = representativeness_of_file(policy, args.file, dataset=args.dataset)
    lines = [f"  - {reason}" for reason in result.evidence.get("reasons", [])[:20]]
    return _report(args, policy, result, run_id, lines)
