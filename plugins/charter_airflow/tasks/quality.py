"""Quality tasks for any DAG: ``validate_quality``, ``check_drift`` and ``check_representativeness``.

Each follows the four steps of every guardrail (see ``runtime.py``): run the check, persist the
CheckResult in the ledger, log it, and raise ``AirflowFailException`` on a failing verdict so bad
data is not retried. Only the redacted CheckResult goes to XCom; the Data Docs of a validation are
written under ``$CHARTER_REPORTS_DIR/<use_case>/<run_id>/data_docs`` and linked from the ledger row.

Usage in a DAG::

    from charter_airflow.tasks.quality import check_drift, check_representativeness, validate_quality
    validate_quality(use_case="citizen_requests", dataset="training") >> check_representativeness(use_case="citizen_requests")
    validate_quality(use_case="citizen_requests", dataset="inference") >> check_drift(use_case="citizen_requests")

Arguments are templated (TaskFlow), e.g. ``path="{{ params.path }}"``. Nothing here imports pandas,
Great Expectations or scipy at module level: DAG files import this module at parse time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import task
from charter_airflow.runtime import configure_from_airflow, persist_and_gate, run_ids


def _target_path(policy: Any, dataset: str, path: str | None) -> Path:
    """The policy's file for ``dataset``, or another delivery at ``path`` inside the data folder."""
    return Path(policy.dataset(dataset).delivery(path))


def validate_quality_step(
    *,
    use_case: str,
    dataset: str,
    context: Mapping[str, Any],
    path: str | None = None,
    table: str | None = None,
    url: str | None = None,
    suite: str | None = None,
    write_profile: bool = True,
    fail_on: tuple[str, ...] = ("fail",),
) -> dict[str, Any]:
    """Validate a dataset (file, or SQL table in place) against its suite; persist and gate.

    :param use_case: the policy id.
    :param dataset: the dataset id in the policy.
    :param path: a file to validate instead of the policy's (e.g. a variant); relative to the data folder.
    :param table: a SQL table to validate in the database (GX SQL datasource); ``url`` defaults to CHARTER_DATA_URL.
    :param suite: a suite file in ``expectations/``; default the dataset's.
    :param write_profile: for passing training data, store the drift reference profile (computed once, here).
    :param fail_on: verdicts that raise ``AirflowFailException`` (a DAG may let a human override a failure).
    :return: the redacted CheckResult as a JSON-safe dict (for XCom).
    """
    from charter_guardrails.checks.quality.checks import profile_training
    from charter_guardrails.checks.quality.runner import validate_file, validate_table
    from charter_guardrails.core.policy import DatasetFormat, load_policy

    configure_from_airflow()
    policy = load_policy(use_case)
    spec = policy.dataset(dataset)
    _dag_id, run_id = run_ids(context)
    if table or (spec.format is DatasetFormat.SQL and not path):
        result = validate_table(policy, dataset, table, url=url, suite=suite, run_id=run_id)
    else:
        target = _target_path(policy, dataset, path)
        result = validate_file(policy, dataset, target, suite=suite, run_id=run_id)
        if write_profile and not result.failed and dataset == policy.training_dataset.id:
            profile_training(policy, target)
    return persist_and_gate(result, policy=policy, context=context, fail_on=fail_on)


def check_drift_step(
    *,
    use_case: str,
    context: Mapping[str, Any],
    dataset: str | None = None,
    path: str | None = None,
    reference: str | None = None,
    fail_on: tuple[str, ...] = ("fail",),
) -> dict[str, Any]:
    """Compare an inference batch with the stored training profile; persist and gate.

    :param reference: a profile ``.json`` or a training file; default the profile stored by ``validate_quality``.
    """
    from charter_guardrails.checks.quality.checks import drift_of_file, with_json_report
    from charter_guardrails.core.policy import DatasetRole, load_policy

    configure_from_airflow()
    policy = load_policy(use_case)
    ds = dataset or (policy.datasets_with_role(DatasetRole.INFERENCE) or [policy.training_dataset])[0].id
    result = drift_of_file(
        policy, _target_path(policy, ds, path), reference=Path(reference) if reference else None, dataset=ds
    )
    result = with_json_report(result, policy, run_ids(context)[1])
    return persist_and_gate(result, policy=policy, context=context, fail_on=fail_on)


def check_representativeness_step(
    *,
    use_case: str,
    context: Mapping[str, Any],
    dataset: str | None = None,
    path: str | None = None,
    fail_on: tuple[str, ...] = ("fail",),
) -> dict[str, Any]:
    """Group shares, sizes, data gaps and label base rates of the training data; persist and gate."""
    from charter_guardrails.checks.quality.checks import representativeness_of_file, with_json_report
    from charter_guardrails.core.policy import load_policy

    configure_from_airflow()
    policy = load_policy(use_case)
    ds = dataset or policy.training_dataset.id
    result = representativeness_of_file(policy, _target_path(policy, ds, path), dataset=ds)
    result = with_json_report(result, policy, run_ids(context)[1])
    return persist_and_gate(result, policy=policy, context=context, fail_on=fail_on)


@task(task_id="validate_quality")
def validate_quality(
    *,
    use_case: str,
    dataset: str,
    path: str | None = None,
    table: str | None = None,
    url: str | None = None,
    suite: str | None = None,
    **context: Any,
) -> dict[str, Any]:
    """Validate a dataset against its Great Expectations suite; fail without retry on error-severity failures."""
    return validate_quality_step(
        use_case=use_case, dataset=dataset, path=path, table=table, url=url, suite=suite, context=context
    )


@task(task_id="check_drift")
def check_drift(
    *, use_case: str, dataset: str | None = None, path: str | None = None, reference: str | None = None, **context: Any
) -> dict[str, Any]:
    """Compare an inference batch with the training reference; fail without retry when features drift."""
    return check_drift_step(use_case=use_case, dataset=dataset, path=path, reference=reference, context=context)


@task(task_id="check_representativeness")
def check_representativeness(
    *, use_case: str, dataset: str | None = None, path: str | None = None, **context: Any
) -> dict[str, Any]:
    """Check that the training data represents the territory and its groups; fail without retry when it does not."""
    return check_representativeness_step(use_case=use_case, dataset=dataset, path=path, context=context)
