"""The personal-data guardrail of the refresh and inference DAGs, mapped over the workers partition by partition.

The DAG's shape is fixed when it is parsed, a dataset's length only when it runs; so the step is three tasks, in
a task group whose ids are not prefixed:

- ``plan_personal_data_scan`` returns the partitions of the delivered file
  (:func:`charter_guardrails.checks.privacy.partitioned.plan`): row ranges of ``privacy.partition_rows`` rows, or
  one partition, the whole, for a dataset no longer than that;
- ``scan_personal_data_partition`` is mapped over them (``.expand()``): with the CeleryExecutor, each partition
  on whichever worker is free. Its XCom holds counts, scores and masked examples only;
- ``scan_personal_data`` (the step's own task id) merges them with
  :func:`charter_guardrails.checks.privacy.verdict.check_personal_data` (``parts=``) and records the one result
  through :func:`charter_airflow.guardrail_tasks.run_step`, as every other step: the ledger row, the findings,
  the audit event, the GDPR incident, and a failed task when the verdict fails. The gate sees one
  personal-data result per dataset.

The scan of the same file in one process (the library's ``check_personal_data``) runs the same partitions and
merge: the recorded result is the single-task result.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from charter_airflow.guardrail_tasks import (
    Checked,
    GuardrailStep,
    StepRun,
    _delivered,
    call_personal_data,
    guardrail_task,
    run_step,
)
from charter_airflow.runtime import load_policy

log = logging.getLogger(__name__)

PLAN_TASK = "plan_personal_data_scan"
PARTITION_TASK = "scan_personal_data_partition"


def call_partitioned_personal_data(check_personal_data: Callable[..., Any], run: StepRun) -> Checked:
    """The personal-data step from its partitions' scans (the merge task's input), recorded as the single-task step;
    without them (the step run alone, e.g. by :func:`run_step`), the same partitions scanned in this process."""
    if not run.inputs:
        return call_personal_data(check_personal_data, run)
    (parts,) = run.inputs
    return call_personal_data(functools.partial(check_personal_data, parts=list(parts)), run)


def task_for(step: GuardrailStep, policy_file: Path) -> Callable[..., Any]:
    """What builds ``step`` in a DAG: the partitioned task group for the partitioned personal-data step, else the
    step's one task (:func:`charter_airflow.guardrail_tasks.guardrail_task`)."""
    if step.call is call_partitioned_personal_data:
        return functools.partial(partitioned_group, step, policy_file)
    return guardrail_task(step, policy_file)  # type: ignore[no-any-return]


def partitioned_group(step: GuardrailStep, policy_file: Path, *inputs: Any) -> Any:
    """plan → mapped scans → the recorded merge, as one task group (``>>`` links its first and last tasks)."""
    from airflow.sdk import TaskGroup, task

    if inputs:
        raise ValueError(f"the partitioned step {step.task_id!r} takes no upstream output")
    with TaskGroup(group_id=f"{step.task_id}_partitions", prefix_group_id=False) as group:

        @task(task_id=PLAN_TASK)
        def plan(**context: Any) -> list[dict[str, Any]]:
            return plan_partitions(step, policy=load_policy(policy_file), context=context)

        @task(task_id=PARTITION_TASK)
        def scan(partition: dict[str, Any], **context: Any) -> dict[str, Any]:
            return scan_one(step, policy=load_policy(policy_file), context=context, partition=partition)

        @task(task_id=step.task_id, multiple_outputs=False)
        def merge(parts: Any, **context: Any) -> Any:
            policy = load_policy(policy_file)
            return run_step(step, policy=policy, context=context, inputs=(list(parts),))

        merge(scan.expand(partition=plan()))
    return group


def _delivery(step: GuardrailStep, policy: Any, context: Mapping[str, Any]) -> tuple[Any, Path | None]:
    """The dataset and file the step checks, resolved as :func:`run_step` resolves them."""
    dataset = step.dataset_of(policy)
    requested = (context.get("params") or {}).get(step.file_param) if step.file_param else None
    return dataset, _delivered(dataset, context, requested, policy.id)


def plan_partitions(step: GuardrailStep, *, policy: Any, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The partitions of the run's delivery, each with the file's size (a scan refuses a file changed since); a
    delivery that no longer matches the bytes the integrity step verified is refused first."""
    from charter_guardrails.checks.privacy.partitioned import plan
    from charter_guardrails.checks.privacy.report import ScanOptions

    from charter_airflow.pinned_steps import enforce_pin

    dataset, file = _delivery(step, policy, context)
    enforce_pin(step, policy=policy, context=context, file=file)  # the partitions are of the verified file
    windows = plan(dataset, file, ScanOptions.from_policy(policy.privacy, dataset))
    size = file.stat().st_size if file is not None and file.is_file() else None
    log.info("personal data scan of %s/%s: %d partition(s)", policy.id, dataset.id, len(windows))
    return [{"window": w.to_json_dict() if w else None, "size": size} for w in windows]


def scan_one(
    step: GuardrailStep, *, policy: Any, context: Mapping[str, Any], partition: Mapping[str, Any]
) -> dict[str, Any]:
    """One partition's scan (:func:`charter_guardrails.checks.privacy.partitioned.scan_partition`): counts, scores
    and masked examples, for the XCom."""
    from charter_guardrails.checks.privacy.partitioned import scan_partition
    from charter_guardrails.checks.privacy.report import ScanOptions, Window
    from charter_guardrails.core.errors import DatasetReadError

    dataset, file = _delivery(step, policy, context)
    window = Window(**partition["window"]) if partition.get("window") else None
    size = file.stat().st_size if file is not None and file.is_file() else None
    if size != partition.get("size"):
        error = DatasetReadError(
            "changed", f"{file}: the file changed while it was scanned; deliver it again, then rerun", path=str(file)
        )
        return {"window": partition.get("window"), "read_error": error.to_json_dict()}
    options = ScanOptions.from_policy(policy.privacy, dataset)
    source = str(file.name if file else (dataset.path or dataset.table or dataset.id))
    part = scan_partition(dataset, file, options, window, source=source)
    log.info(
        "personal data scan of %s/%s, partition %s: %s rows, %s scanned",
        policy.id,
        dataset.id,
        f"{window.index + 1} of {window.count}" if window else "1 of 1",
        part.get("rows", 0),
        part.get("scanned_rows", 0),
    )
    return part
