"""One run of a Great Expectations suite on one batch, and the CheckResult it gives.

The entry points of :mod:`charter_guardrails.checks.quality.runner` describe the data (:class:`InputInfo`)
and how GX reads it; :func:`run_suite` checks the columns, runs the expectations that can run, evaluates
the others as failures that say why, redacts what GX returned, and turns the outcomes into a verdict.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from charter_guardrails.checks.quality.redaction import (
    exception_message,
    personal_columns,
    redact_gx_result,
    redact_result,
)
from charter_guardrails.checks.quality.suites import ExpectationSpec, LoadedSuite, build_gx_suite
from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.messages import TEXT, Message, Template
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import Dataset
from charter_guardrails.core.results import CheckResult, Severity, Verdict, with_report_error
from charter_guardrails.core.settings import get_settings

SUITE_UNREADABLE = Template("quality suite %(suite)s not run: the data cannot be read (%(kind)s): %(detail)s")
SUITE_FAILED = Template(
    "quality suite %(suite)s FAILED on %(dataset)s: %(failed)s error expectation(s) failed — %(reasons)s"
)
SUITE_FAILED_WITH_PROBLEMS = Template(
    "quality suite %(suite)s FAILED on %(dataset)s: %(failed)s error expectation(s) failed, "
    "%(problems)s input problem(s) — %(reasons)s"
)
SUITE_PASSED_WITH_WARNINGS = Template(
    "quality suite %(suite)s passed on %(dataset)s with %(warnings)s warning(s): %(reasons)s"
)
SUITE_PASSED = Template("quality suite %(suite)s passed on %(dataset)s: %(successful)s/%(evaluated)s expectations met")
MORE_REASONS = Template("… %(count)s more")
EXPECTATION = Template("%(what)s")
EXPECTATION_ROWS = Template("%(what)s (%(count)s rows)")
EXPECTATION_OBSERVED = Template("%(what)s (observed %(observed)s)")
ON_COLUMNS = Template("%(columns)s: %(reason)s")
MISSING_COLUMNS = Template("declared column(s) missing from the data: %(columns)s")
EXTRA_COLUMNS = Template("column(s) in the data but not declared in the policy: %(columns)s")
UNKNOWN_COLUMNS = Template("suite %(suite_file)s refers to column(s) neither declared nor present: %(columns)s")
EMPTY_DATASET = Template("the dataset is empty (0 rows)")
#: The templates of the input problems, by kind.
PROBLEM_TEMPLATES = {
    "missing_column": MISSING_COLUMNS,
    "extra_column": EXTRA_COLUMNS,
    "unknown_column": UNKNOWN_COLUMNS,
    "empty": EMPTY_DATASET,
}

#: GX result format: counts and up to 20 unexpected values, which we count, then mask or drop right after
#: (``redaction.redact_result``). BASIC, not SUMMARY: SUMMARY adds the row indexes of the unexpected values,
#: for which GX filters the whole frame once per map expectation, and the runner keeps no row index.
RESULT_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": 20}


@dataclass
class InputInfo:
    """What the runner knows about the data before GX runs."""

    source: str
    columns: list[str]
    row_count: int | None
    problems: list[dict[str, Any]] = field(default_factory=list)


def safe_run_name(run_id: str | None) -> str:
    """A run id usable as a folder name (Airflow run ids hold ':' and '+')."""
    run_id = run_id or datetime.now(UTC).strftime("cli__%Y%m%dT%H%M%S") + f"_{uuid.uuid4().hex[:6]}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


def suite_parameters(dataset: Dataset, loaded: LoadedSuite, now: datetime | None = None) -> dict[str, Any]:
    """Values of ``$PARAMETER`` kwargs. Naive UTC, because SQL tables store naive timestamps."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    params: dict[str, Any] = {"now": now}
    needed = {p for e in loaded.expectations for p in e.parameters}
    if "retention_start" in needed:
        if dataset.retention is None:
            raise ConfigError(
                f"suite {loaded.path} uses retention_start but dataset {dataset.id!r} declares no retention"
            )
        params["retention_start"] = now - timedelta(days=dataset.retention.days)
    return params


def run_suite(
    policy: UseCasePolicy,
    ds: Dataset,
    loaded: LoadedSuite,
    info: InputInfo,
    batch_for: Callable[[Any], Any],
    *,
    run_id: str | None,
    data_docs: bool,
    now: datetime | None,
    local: dict[int, dict[str, Any]] | None = None,
) -> CheckResult:
    """Validate one batch: ``batch_for(context)`` gives it; ``local`` holds outcomes evaluated outside GX."""
    from charter_guardrails.checks.quality._gx import ephemeral_context

    started = time.perf_counter()
    column_problems, absent = _column_problems(ds, loaded, info)
    problems = column_problems + info.problems
    local = local or {}
    runnable = [e for e in loaded.expectations if not set(e.columns) & absent and e.index not in local]
    skipped = [e for e in loaded.expectations if set(e.columns) & absent]
    params = suite_parameters(ds, loaded, now)

    context = ephemeral_context()
    gx_suite = context.suites.add(build_gx_suite(loaded.path, loaded.name, runnable)) if runnable else None
    outcomes: list[dict[str, Any]] = []
    validation = None
    if gx_suite is not None:
        batch = batch_for(context)
        validation = batch.validate(gx_suite, result_format=RESULT_FORMAT, expectation_parameters=params)
        outcomes = _gx_outcomes(runnable, gx_suite, validation, personal_columns(ds))
    outcomes += _local_outcomes(loaded, local, skipped) + _skipped_outcomes(skipped, absent)
    outcomes.sort(key=lambda o: o["index"])

    report, report_failure = None, None
    if data_docs and validation is not None:
        try:
            report = _build_data_docs(context, validation, policy, ds, loaded, run_id)
        except Exception as exc:  # noqa: BLE001 - full or read-only reports folder: the verdict is still recorded, then the task fails
            report_failure = exc
    result = to_check_result(policy, ds, loaded, info, problems, outcomes, report, time.perf_counter() - started)
    if report_failure is not None:
        result = with_report_error(
            result, "Data Docs", get_settings().reports_dir / policy.id / safe_run_name(run_id), report_failure
        )
    return result


def _gx_outcomes(
    runnable: list[ExpectationSpec], gx_suite: Any, validation: Any, personal: set[str]
) -> list[dict[str, Any]]:
    """The outcome of each expectation GX ran, redacted; GX's stored result is redacted in place too."""
    outcomes: list[dict[str, Any]] = []
    personal_by_index: dict[int, bool] = {}
    for position, (spec, item) in enumerate(_match_results(runnable, gx_suite, validation)):
        is_personal = bool(set(spec.columns) & personal)
        personal_by_index[position] = is_personal
        message = exception_message(item.exception_info)
        outcome = {
            "expectation": spec.type,
            "index": spec.index,
            "columns": spec.columns,
            "severity": spec.severity,
            "success": bool(item.success),
            "result": redact_result(spec.type, dict(item.result or {}), personal=is_personal),
        }
        if message is not None:
            outcome["success"] = False
            outcome["error"] = "the expectation could not be evaluated" + (
                "" if is_personal else f": {message.splitlines()[0][:200]}"
            )
        outcomes.append(outcome)
    redact_gx_result(validation, personal_by_index)
    return outcomes


def _local_outcomes(
    loaded: LoadedSuite, local: dict[int, dict[str, Any]], skipped: list[ExpectationSpec]
) -> list[dict[str, Any]]:
    """The outcomes evaluated outside GX (see ``runner._sql_type_outcomes``)."""
    return [
        {
            "expectation": spec.type,
            "index": spec.index,
            "columns": spec.columns,
            "severity": spec.severity,
            **local[spec.index],
        }
        for spec in loaded.expectations
        if spec.index in local and spec not in skipped
    ]


def _skipped_outcomes(skipped: list[ExpectationSpec], absent: set[str]) -> list[dict[str, Any]]:
    """Expectations on absent columns: failures that name the columns."""
    return [
        {
            "expectation": spec.type,
            "index": spec.index,
            "columns": spec.columns,
            "severity": spec.severity,
            "success": False,
            "result": {},
            "error": f"not evaluated: column(s) {[c for c in spec.columns if c in absent]} absent from the data",
        }
        for spec in skipped
    ]


def _column_problems(ds: Dataset, loaded: LoadedSuite, info: InputInfo) -> tuple[list[dict[str, Any]], set[str]]:
    """Missing, extra and unknown columns; returns the problems and the columns absent from the data."""
    declared = [c.name for c in ds.columns]
    present = set(info.columns)
    problems: list[dict[str, Any]] = []
    missing = [c for c in declared if c not in present]
    if missing:
        problems.append(
            {
                "kind": "missing_column",
                "columns": missing,
                "message": f"declared column(s) missing from the data: {missing}",
            }
        )
    extra = [c for c in info.columns if c not in declared]
    if extra:
        problems.append(
            {
                "kind": "extra_column",
                "columns": extra,
                "message": f"column(s) in the data but not declared in the policy: {extra}",
            }
        )
    unknown = sorted(c for c in loaded.columns if c not in declared and c not in present)
    if unknown:
        problems.append(
            {
                "kind": "unknown_column",
                "columns": unknown,
                "path": loaded.path.name,
                "message": f"suite {loaded.path.name} refers to column(s) neither declared nor present: {unknown}",
            }
        )
    if info.row_count == 0:
        problems.append({"kind": "empty", "message": "the dataset is empty (0 rows)"})
    return problems, {c for c in loaded.columns if c not in present}


def _match_results(
    runnable: list[ExpectationSpec], gx_suite: Any, validation: Any
) -> list[tuple[ExpectationSpec, Any]]:
    """GX returns results in its own order; match them to the suite's expectations by id."""
    spec_by_id = {str(expectation.id): spec for expectation, spec in zip(gx_suite.expectations, runnable, strict=True)}
    pairs = sorted(
        ((spec_by_id[str(item.expectation_config.id)], item) for item in validation.results),
        key=lambda pair: pair[0].index,
    )
    # position i of GX's results is now pair i (redaction of the stored result works by position)
    validation.results = [item for _, item in pairs]
    return pairs


def _build_data_docs(
    context: Any, validation: Any, policy: UseCasePolicy, ds: Dataset, loaded: LoadedSuite, run_id: str | None
) -> Path:
    """Data Docs for this run only, from the already-redacted result."""
    from charter_guardrails.checks.quality._gx_docs import write_data_docs

    run_name = safe_run_name(run_id)
    target = get_settings().reports_dir / policy.id / run_name / "data_docs" / ds.id
    return write_data_docs(
        context, validation, target, suite_name=loaded.name, run_name=run_name, batch_identifier=ds.id
    )


def unreadable(
    policy: UseCasePolicy, ds: Dataset, loaded: LoadedSuite, kind: str, message: str, *, source: str
) -> CheckResult:
    return CheckResult(
        check=CheckName.QUALITY,
        verdict=Verdict.FAIL,
        severity=Severity.ERROR,
        engagements=CATALOGUE[CheckName.QUALITY].engagement_ids(),
        dataset=ds.id,
        message=SUITE_UNREADABLE(suite=loaded.name, kind=kind, detail=message),
        metrics={
            "success_percent": 0.0,
            "evaluated_expectations": 0,
            "failed_error": 0,
            "failed_warning": 0,
            "rows": None,
        },
        evidence={
            "suite": loaded.name,
            "source": source,
            "problems": [{"kind": kind, "message": message}],
            "expectations": [],
        },
    )


def _describe(outcome: dict[str, Any]) -> Message:
    cols = ",".join(outcome["columns"])
    what = outcome["expectation"].removeprefix("expect_")
    result = outcome.get("result") or {}
    count = result.get("unexpected_count")
    if count:
        described = EXPECTATION_ROWS(what=what, count=count)
    elif "observed_value" in result and not str(result.get("observed_value", "")).startswith("<redacted"):
        described = EXPECTATION_OBSERVED(what=what, observed=str(result["observed_value"]))
    else:
        described = EXPECTATION(what=what)
    return ON_COLUMNS(columns=cols, reason=described) if cols else described


def _problem(problem: dict[str, Any]) -> Message:
    """An input problem as a message: by its kind when the kind is known, its text otherwise."""
    template = PROBLEM_TEMPLATES.get(problem.get("kind", ""))
    if template is None:
        return TEXT(text=problem["message"])
    return template(columns=problem.get("columns") or [], suite_file=problem.get("path") or "")


def to_check_result(
    policy: UseCasePolicy,
    ds: Dataset,
    loaded: LoadedSuite,
    info: InputInfo,
    problems: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    report: Path | None,
    seconds: float,
) -> CheckResult:
    evaluated = len(outcomes)
    successful = sum(1 for o in outcomes if o["success"])
    errors = [o for o in outcomes if o["severity"] == "error"]
    failed_error = [o for o in errors if not o["success"]]
    failed_warning = [o for o in outcomes if o["severity"] == "warning" and not o["success"]]
    success_percent = 100.0 * successful / evaluated if evaluated else 0.0
    error_success_percent = 100.0 * (len(errors) - len(failed_error)) / len(errors) if errors else 100.0
    failing = bool(problems) or error_success_percent < policy.quality.min_success_percent or (evaluated == 0)
    verdict = Verdict.FAIL if failing else (Verdict.WARN if failed_warning or failed_error else Verdict.PASS)
    message = _summary(verdict, loaded.name, ds.id, problems, outcomes)
    return CheckResult(
        check=CheckName.QUALITY,
        verdict=verdict,
        severity=Severity.ERROR
        if verdict is Verdict.FAIL
        else (Severity.WARNING if verdict is Verdict.WARN else Severity.INFO),
        engagements=CATALOGUE[CheckName.QUALITY].engagement_ids(),
        dataset=ds.id,
        message=message,
        metrics={
            "success_percent": round(success_percent, 2),
            "error_success_percent": round(error_success_percent, 2),
            "evaluated_expectations": evaluated,
            "successful_expectations": successful,
            "failed_error": len(failed_error),
            "failed_warning": len(failed_warning),
            "input_problems": len(problems),
            "rows": info.row_count,
            "seconds": round(seconds, 3),
        },
        evidence={
            "suite": loaded.name,
            "suite_file": loaded.path.name,
            "source": info.source,
            "problems": problems,
            "expectations": outcomes,
            "redacted_columns": sorted(personal_columns(ds)),
            "data_docs": str(report) if report else None,
        },
        report_path=str(report) if report else None,
    )


def _summary(
    verdict: Verdict, suite: str, dataset: str, problems: list[dict[str, Any]], outcomes: list[dict[str, Any]]
) -> Message:
    """One line: the verdict and, for a failure or a warning, the first six reasons."""
    successful = sum(1 for o in outcomes if o["success"])
    failed_error = [o for o in outcomes if o["severity"] == "error" and not o["success"]]
    failed_warning = [o for o in outcomes if o["severity"] == "warning" and not o["success"]]
    if verdict is Verdict.FAIL:
        reasons = [_problem(p) for p in problems] + [_describe(o) for o in failed_error]
        listed: list[Message] = reasons[:6]
        if len(reasons) > 6:
            listed.append(MORE_REASONS(count=len(reasons) - 6))
        return (SUITE_FAILED_WITH_PROBLEMS if problems else SUITE_FAILED)(
            suite=suite, dataset=dataset, failed=len(failed_error), problems=len(problems), reasons=listed
        )
    if verdict is Verdict.WARN:
        return SUITE_PASSED_WITH_WARNINGS(
            suite=suite,
            dataset=dataset,
            warnings=len(failed_warning) + len(failed_error),
            reasons=[_describe(o) for o in (failed_warning + failed_error)[:6]],
        )
    return SUITE_PASSED(suite=suite, dataset=dataset, successful=successful, evaluated=len(outcomes))
