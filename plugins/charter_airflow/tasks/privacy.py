"""Personal-data tasks for any DAG: ``scan_personal_data`` and ``pseudonymise_dataset``.

``scan_personal_data`` follows the four steps of every guardrail (see ``runtime.py``): scan and
judge against the policy, persist (the verdict, its masked ``pii_findings`` rows and, for
forbidden personal data in a non-personal dataset, the GDPR incident with its alert outbox, in
one transaction), log, and raise ``AirflowFailException`` on a violation so bad data is not
retried. Only the ``CheckResult`` goes to XCom: counts, reasons and masked examples.

``pseudonymise_dataset`` writes the training-ready Parquet file (undeclared columns dropped,
identifiers HMAC'd, free text masked) and returns its path; the key comes from the Airflow
variable ``charter_pseudonymisation_key`` (or the environment, or the key file) and is never logged.

Usage in a DAG::

    from charter_airflow.tasks.privacy import pseudonymise_dataset, scan_personal_data
    scan = scan_personal_data(use_case="citizen_requests", dataset="training")
    scan >> pseudonymise_dataset(use_case="citizen_requests", dataset="training")

Nothing here imports pandas, Presidio or spaCy at module level: DAG files import it at parse time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import task
from charter_airflow.runtime import configure_from_airflow, persist_and_gate, run_ids

log = logging.getLogger(__name__)


def _target(policy: Any, dataset: str, path: str | None) -> Path:
    """The policy's file for ``dataset``, or another delivery at ``path`` inside the data folder."""
    return Path(policy.dataset(dataset).delivery(path))


def scan_personal_data_step(
    *,
    policy: Any,
    dataset: str,
    path: str | None,
    context: Mapping[str, Any],
    exhaustive: bool | None = None,
    fail_on: tuple[str, ...] = ("fail",),
) -> dict[str, Any]:
    """Scan the dataset's file, judge it against ``policy``, persist the result and its findings, gate.

    :param policy: the loaded ``UseCasePolicy``.
    :param dataset: the dataset id in the policy.
    :param path: another file of that dataset (e.g. a new delivery); default the policy's path.
    :param context: the Airflow context (its run id names the reports and keys the incident).
    :param exhaustive: force the scan mode; default the policy's ``privacy.scan_mode``.
    :param fail_on: verdicts that raise ``AirflowFailException``.
    :return: the CheckResult as a JSON-safe dict (for XCom).
    """
    from charter_guardrails.checks.privacy.verdict import check_personal_data, record_findings

    configure_from_airflow()
    _dag_id, run_id = run_ids(context)
    outcome = check_personal_data(
        policy, dataset, path=_target(policy, dataset, path), exhaustive=exhaustive, run_id=run_id
    )

    def findings(session: Any, _check_run: Any, row: Any) -> None:
        record_findings(session, row, outcome)

    return persist_and_gate(
        outcome.result, policy=policy, context=context, incident=outcome.incident, extra=findings, fail_on=fail_on
    )


def pseudonymise_dataset_step(
    *, policy: Any, dataset: str, path: str | None, context: Mapping[str, Any], output: str | None = None
) -> str:
    """Write the training-ready Parquet copy of the dataset; return its path (for XCom)."""
    from charter_guardrails.checks.privacy.pseudonymise import pseudonymise_frame, write_frame
    from charter_guardrails.core.keys import load_pseudonymisation_key
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.readers.files import read_dataset

    configure_from_airflow()
    _dag_id, run_id = run_ids(context)
    spec = policy.dataset(dataset)
    frame = read_dataset(spec, _target(policy, dataset, path))
    out, report = pseudonymise_frame(frame, spec, load_pseudonymisation_key())
    safe_run = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    target = (
        Path(output)
        if output
        else get_settings().home / "work" / policy.id / safe_run / f"{dataset}__pseudonymised.parquet"
    )
    write_frame(out, target)
    log.info(
        "pseudonymised %s/%s: %d rows, hashed %s, masked %s, dropped %s -> %s",
        policy.id,
        dataset,
        report.rows,
        report.hashed_columns,
        report.masked_columns,
        report.dropped_columns,
        target,
    )
    return str(target)


@task(task_id="scan_personal_data")
def scan_personal_data(
    *, use_case: str, dataset: str, path: str | None = None, exhaustive: bool | None = None, **context: Any
) -> dict[str, Any]:
    """Scan a declared dataset for personal data and fail on a policy violation (Sûreté 1, Proportionnalité 3)."""
    from charter_guardrails.core.policy import load_policy

    configure_from_airflow()
    return scan_personal_data_step(
        policy=load_policy(use_case), dataset=dataset, path=path, context=context, exhaustive=exhaustive
    )


@task(task_id="pseudonymise_dataset")
def pseudonymise_dataset(
    *, use_case: str, dataset: str, path: str | None = None, output: str | None = None, **context: Any
) -> str:
    """Write the pseudonymised, minimised training copy of a dataset; return its path."""
    from charter_guardrails.core.policy import load_policy

    configure_from_airflow()
    return pseudonymise_dataset_step(
        policy=load_policy(use_case), dataset=dataset, path=path, context=context, output=output
    )
