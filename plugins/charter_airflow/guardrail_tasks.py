"""One function turns a guardrail step into an Airflow task: load the policy, resolve the delivered
file, run the library check, persist the result, gate.

A :class:`GuardrailStep` is declared once, in the step tables of ``dag_factory.py``: its task id, the
library function it runs (an import path, resolved in the task body so that DAG parsing never imports
pandas, Great Expectations, Presidio or scikit-learn), the dataset role and the params key of a
delivered file. Whether a failure stops the run at once comes from the check catalogue: a failing
verdict of a check that is not overridable raises ``AirflowFailException`` (not retried); an
overridable one is recorded and the run goes on, so that the gate sees every verdict and a human may
override it. Infrastructure errors raise normally and Airflow retries them.

The call functions below are the only code between a task and the library: each calls its library
function with what the step resolved, and says what to record (results, incident, extra rows) and what
the task returns (the CheckResult, or a file path or a candidate for the next task).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from charter_airflow.runtime import delivered_file, load_policy, persist_and_gate, run_ids, work_dir

if TYPE_CHECKING:
    from charter_guardrails.checks.integrity.pin import PinnedFile
    from charter_guardrails.checks.integrity.table_verification import PinnedTable
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.core.policy_models import Dataset
    from charter_guardrails.core.results import CheckResult
    from charter_guardrails.incidents.incident import IncidentDraft

log = logging.getLogger(__name__)


def overridable(check: str) -> bool:
    """Whether a human may override a failure of ``check`` (the catalogue's spec)."""
    from charter_guardrails.core.catalogue import spec_of

    return spec_of(check).overridable


def fail_on(check: str) -> tuple[str, ...]:
    """The verdicts that fail the task at once: none for an overridable check (the gate decides)."""
    return () if overridable(check) else ("fail",)


@dataclass(frozen=True)
class StepRun:
    """What a step's call gets: the policy, its dataset and delivered file, the run, upstream outputs."""

    policy: UseCasePolicy
    context: Mapping[str, Any]
    run_id: str
    dataset: Dataset | None = None
    file: Path | None = None
    #: the delivery the run asked for (``None``: the policy's own file), e.g. to validate a SQL table in place
    requested: str | None = None
    inputs: tuple[Any, ...] = ()
    #: the bytes the run's integrity step verified, that ``file`` must still hold, or the rows of a table that a
    #: ``"copy"`` step holds its copy to (``pinned_steps``)
    pin: PinnedFile | PinnedTable | None = None


@dataclass(frozen=True)
class Recorded:
    """A CheckResult to persist, with what belongs in its transaction."""

    result: CheckResult
    incident: IncidentDraft | None = None
    #: called as ``extra(session, check_run, result_row)`` inside the transaction
    extra: Callable[[Any, Any, Any], None] | None = None


@dataclass(frozen=True)
class Checked:
    """What a call produced: results to record, in order, and the task's XCom when it is not the last result."""

    recorded: tuple[Recorded, ...] = ()
    output: Any = None
    #: the pinned reference of the verified file, added to the task's XCom (the integrity step's)
    pin: dict[str, Any] | None = None

    @classmethod
    def of(cls, result: CheckResult, **kwargs: Any) -> Checked:
        return cls(recorded=(Recorded(result, **kwargs),))


@dataclass(frozen=True, kw_only=True)
class GuardrailStep:
    """One guardrail task of a generated DAG.

    :param task_id: the Airflow task id.
    :param function: ``"module:function"`` of the library function it runs, imported in the task body.
    :param call: how the step calls ``function`` and what it records (a function of this module).
    :param checks: the checks it records; whether their failure is hard comes from the catalogue.
    :param role: the role of the policy's dataset it checks (``training`` or ``inference``), if any.
    :param file_param: the params key that names another delivery of that dataset.
    :param inputs: task ids whose return values it takes, in order.
    :param pin: how it holds the delivered file to the bytes the run's integrity step verified (``pinned_steps``):
        ``"check"`` checks the file before the call, ``"copy"`` lets the call use a verified copy.
    """

    task_id: str
    function: str
    call: Callable[[Callable[..., Any], StepRun], Checked]
    checks: tuple[str, ...] = ()
    role: str | None = None
    file_param: str | None = None
    inputs: tuple[str, ...] = field(default=())
    pin: Literal["check", "copy"] | None = None

    @property
    def hard(self) -> bool:
        """A failure stops the run at once and no human can override it."""
        return any(not overridable(check) for check in self.checks)

    def dataset_of(self, policy: UseCasePolicy) -> Dataset | None:
        from charter_guardrails.core.policy_models import DatasetRole

        return policy.datasets_with_role(DatasetRole(self.role))[0] if self.role else None


def resolve(function: str) -> Callable[..., Any]:
    """The object at ``"module:attribute"``."""
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def guardrail_task(step: GuardrailStep, policy_file: Path) -> Any:
    """The Airflow task of ``step`` for the policy at ``policy_file``; call it with its inputs' XComArgs."""
    from airflow.sdk import task

    # One XCom per task: the CheckResult, or the output the next task takes.
    @task(task_id=step.task_id, multiple_outputs=False)
    def run(*inputs: Any, **context: Any) -> Any:
        return run_step(step, policy=load_policy(policy_file), context=context, inputs=inputs)

    return run


def run_step(
    step: GuardrailStep,
    *,
    policy: UseCasePolicy,
    context: Mapping[str, Any],
    inputs: tuple[Any, ...] = (),
    dataset: Dataset | None = None,
    path: str | None = None,
) -> Any:
    """Resolve the delivered file, run the step's library function, persist what it checked and gate.

    :param dataset: the dataset to check; default the policy's dataset of the step's role.
    :param path: the file to check; default the run's ``params[step.file_param]``, else the policy's file.
    :return: the task's XCom: the last CheckResult as a JSON-safe dict, or the call's output.
    """
    from charter_airflow.pinned_steps import enforce_pin

    dataset = dataset or step.dataset_of(policy)
    requested = path or ((context.get("params") or {}).get(step.file_param) if step.file_param else None)
    file = _delivered(dataset, context, requested, policy.id)
    run = StepRun(
        policy=policy,
        context=context,
        run_id=run_ids(context)[1],
        dataset=dataset,
        file=file,
        requested=str(requested) if requested else None,
        inputs=tuple(inputs),
        # refuses a file (or a table) changed since verified
        pin=enforce_pin(step, policy=policy, context=context, file=file, dataset=dataset),
    )
    checked = step.call(resolve(step.function), run)
    xcom: Any = None
    for item in checked.recorded:
        xcom = persist_and_gate(
            item.result,
            policy=policy,
            context=context,
            incident=item.incident,
            extra=item.extra,
            fail_on=fail_on(item.result.check),
        )
    if checked.pin is not None and isinstance(xcom, dict):
        xcom = {**xcom, "pin": checked.pin}
    return checked.output if checked.output is not None else xcom


def _delivered(dataset: Dataset | None, context: Mapping[str, Any], requested: Any, use_case: str) -> Path | None:
    from charter_guardrails.core.policy_models import DatasetFormat

    if dataset is None or (dataset.format is DatasetFormat.SQL and not requested):
        return None  # a SQL table is checked in place
    return delivered_file(dataset, context, path=str(requested) if requested else None, use_case=use_case)


# --- the integrity monitor: the same integrity step, for every registered dataset --------------------------


def verify_registered_dataset(*, use_case: str, dataset: str, path: str | None, context: Mapping[str, Any]) -> Any:
    """The integrity step on one registered dataset of any use case (the monitor maps it over the registry)."""
    from charter_airflow.pinned_steps import INTEGRITY_STEP

    policy = load_policy(use_case)
    return run_step(INTEGRITY_STEP, policy=policy, context=context, dataset=policy.dataset(dataset), path=path)


def list_registered_datasets() -> list[dict[str, Any]]:
    """Every dataset with an active manifest, as keyword arguments for the mapped integrity task."""
    from charter_guardrails.ledger.models import DatasetRecord, Manifest
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    from charter_airflow.runtime import configure_from_airflow

    configure_from_airflow()
    with ledger_session() as session:
        rows = session.execute(
            select(DatasetRecord.use_case, DatasetRecord.name, Manifest.document)
            .join(Manifest, Manifest.dataset_id == DatasetRecord.id)
            .where(Manifest.status == "active")
            .order_by(DatasetRecord.id)
        ).all()
    return [{"use_case": r.use_case, "dataset": r.name, "path": _monitored(r.document or {})} for r in rows]


def _monitored(document: dict[str, Any]) -> str | None:
    """What the monitor verifies: the registered file, or the object by its URI (staged again from the store: its
    manifest's location is the staged copy, which would say nothing of the object now)."""
    registered_object = document.get("object")
    if isinstance(registered_object, dict) and registered_object.get("uri"):
        return str(registered_object["uri"])
    location = document.get("location")
    return str(location) if location else None


# --- how each step calls its library function ---------------------------------------------------------------


def _dataset(run: StepRun) -> Dataset:
    if run.dataset is None:
        raise ValueError("this step checks a dataset: declare its role")
    return run.dataset


def _file_of(run: StepRun) -> Path:
    if run.file is None:
        raise ValueError(f"dataset {_dataset(run).id!r} is a SQL table: this step needs a file")
    return run.file


def call_kill_switch(check_kill_switch: Callable[..., Any], run: StepRun) -> Checked:
    """Maîtrise humaine 2: nothing runs while the production model is suspended."""
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        return Checked.of(check_kill_switch(session, run.policy.id))


def call_declaration(check_declaration: Callable[..., Any], run: StepRun) -> Checked:
    return Checked.of(check_declaration(run.policy))


def call_personal_data(check_personal_data: Callable[..., Any], run: StepRun) -> Checked:
    """Sûreté 1 and Proportionnalité 3: the verdict, its masked findings and, for a leak, the GDPR incident."""
    from charter_guardrails.checks.privacy.verdict import record_findings

    outcome = check_personal_data(run.policy, _dataset(run).id, path=run.file, run_id=run.run_id)

    def findings(session: Any, _check_run: Any, row: Any) -> None:
        record_findings(session, row, outcome)

    return Checked.of(outcome.result, incident=outcome.incident, extra=findings)


def call_quality(validate_file: Callable[..., Any], run: StepRun) -> Checked:
    """Équité 2: the dataset's suite; a passing training file also stores the drift reference profile."""
    from charter_guardrails.checks.quality.checks import profile_training
    from charter_guardrails.checks.quality.runner import validate_table

    policy, spec = run.policy, _dataset(run)
    if run.file is None:
        on_table = validate_table(policy, spec.id, None, run_id=run.run_id)
        if not on_table.failed and spec.id == policy.training_dataset.id:
            profile_training(policy)  # the profiled columns of the table, SELECTed (checks.profile_training)
        return Checked.of(on_table)
    target = _file_of(run)
    result = validate_file(policy, spec.id, target, run_id=run.run_id)
    if not result.failed and spec.id == policy.training_dataset.id:
        profile_training(policy, target)
    return Checked.of(result)


def call_file_check(check_file: Callable[..., Any], run: StepRun) -> Checked:
    """A check of one file (representativeness, drift), or of a ``format: sql`` dataset counted in its database
    (no file), its result also written as a JSON report."""
    from charter_guardrails.checks.quality.checks import with_json_report

    result = check_file(run.policy, run.file, dataset=_dataset(run).id)
    return Checked.of(with_json_report(result, run.policy, run.run_id))


def call_proportionality(check_proportionality: Callable[..., Any], run: StepRun) -> Checked:
    """Minimise the pseudonymised training data to what the purpose needs; training sees only that file.

    Only the columns minimisation keeps are read (a Parquet column projection); the others are judged by name."""
    import pandas as pd
    import pyarrow.parquet as pq
    from charter_guardrails.checks.proportionality import minimised_columns

    (pseudonymised,) = run.inputs
    policy = run.policy
    received = list(pq.read_schema(pseudonymised).names)
    needed = [c for c in minimised_columns(policy) if c in received]
    frame = pd.read_parquet(pseudonymised, columns=needed)
    minimised, result = check_proportionality(
        policy, policy.training_dataset, frame, as_of=datetime.now(UTC), received=received
    )
    out = work_dir(policy, run.context) / "training.minimised.parquet"
    if not result.failed:  # nothing is written for training when minimisation failed
        minimised.to_parquet(out, index=False)
    return Checked(recorded=(Recorded(result),), output=str(out))


def call_train(train_candidate: Callable[..., Any], run: StepRun) -> Checked:
    """Train the candidate on the minimised frame only, measuring its energy (codecarbon, offline, FRA).

    The ``training`` verdict is recorded either way. A team's ``model.trainer`` that failed (import, exception,
    undeclared column, bad result, time limit) fails the task once recorded (the check is not overridable).
    """
    import pandas as pd
    from charter_guardrails.decision.review_records import record_candidate
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.refresh.training_check import check_training

    (minimised,) = run.inputs
    artifact_dir = work_dir(run.policy, run.context) / "candidate"
    trained = check_training(train_candidate, run.policy, pd.read_parquet(minimised), artifact_dir=artifact_dir)
    if trained.model is not None:
        # Publish loads the candidate through this ledger record (path and SHA-256), never through XCom.
        with ledger_session() as session:
            record_candidate(session, use_case=run.policy.id, run_id=run.run_id, candidate=trained.candidate)
    return Checked(recorded=(Recorded(trained.result),), output=trained.candidate or None)


def call_evaluate(evaluate_candidate: Callable[..., Any], run: StepRun) -> Checked:
    """Candidate against production on the same held-out rows: performance, and fairness per group."""
    from charter_guardrails.refresh.evaluation_checks import check_fairness, check_performance
    from charter_guardrails.refresh.training import load_trained_model

    (candidate,) = run.inputs
    report = evaluate_candidate(run.policy, load_trained_model(candidate), _production_model(run.policy))
    results = (check_performance(run.policy, report), check_fairness(run.policy, report))
    return Checked(recorded=tuple(Recorded(r) for r in results), output=report.to_json_dict())


def _production_model(policy: UseCasePolicy) -> Any:
    from charter_guardrails.decision.model_registry import artifact_file, production_version
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.refresh.artifacts import load_model

    with ledger_session() as session:
        version = production_version(session, policy.id)
        path = artifact_file(version) if version is not None else None  # stored relative to the models folder
        if version is None or path is None or not version.artifact_sha256:
            return None
        sha = version.artifact_sha256
    return load_model(path, sha)  # refuses an artifact changed since it was published


def call_footprint(check_footprint: Callable[..., Any], run: StepRun) -> Checked:
    """Durabilité 1: is the gain worth the energy of the refresh?"""
    candidate, evaluation = run.inputs
    return Checked.of(check_footprint(run.policy, float(evaluation.get("gain") or 0.0), candidate.get("energy") or {}))
