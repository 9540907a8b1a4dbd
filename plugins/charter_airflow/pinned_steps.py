"""The file the guardrails checked is the file that gets used: the integrity step pins it, later steps hold to it.

The integrity step (:func:`call_integrity`) verifies the delivery against its signed manifest and, when it is
intact, adds a pinned reference to its XCom (``pin``: the file relative to the data folder, the Merkle root and
size of the bytes it verified, the manifest, a version id where the store has one; digests only, never a value,
see :mod:`charter_guardrails.checks.integrity.pin`). Each later step of the same delivery declares how it holds
to that pin (``GuardrailStep.pin``):

- ``"check"``: :func:`enforce_pin` hashes the file again (streaming, bounded memory) before the step's check runs;
- ``"copy"``: the step that builds what is used (the training input, :func:`call_pseudonymise`) reads the
  delivery once into the run's work folder and uses that copy only if it matches the pin, so the bytes it
  uses are the bytes it hashed; routing an accepted inference batch does the same (:func:`accept_verified`).

A ``format: sql`` dataset read in place is verified as its table (rows hashed in key order over the key ranges
of its signed manifest, :mod:`charter_guardrails.checks.integrity.table_verification`), and its pin is the table's
Merkle root and row count (``kind: table``). Every later ``"check"`` step re-hashes the table against it first
(:func:`enforce_table_pin`): one more pass over the rows per step, streamed; the table is not copied for them, so a
change made while such a step reads it is caught by the next step or run, not by that step. The ``"copy"`` step,
:func:`call_pseudonymise`, reads the table once, hashing every column of every row while it writes the
pseudonymised projection of the declared columns, and keeps that copy only if the rows hash to the pinned root
(:mod:`charter_guardrails.checks.privacy.pseudonymise_table`): the training input is the verified rows.

A file that no longer matches is refused with the integrity verdict and incident of a mismatch (the
verification's own ``to_check_result`` and ``incident_draft``, recorded by ``persist_and_gate`` as the integrity
step records them), and the task fails without retry: deliver the file again and re-run.

The pin comes from the task instance's XCom: a task run by Airflow always has one, and a step that declares a
pin refuses to run without the integrity step's. A direct call of ``run_step`` without a task instance (the
library's tests of one step) has no upstream XCom and checks the file it resolves, as the step always did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.catalogue import CheckName

from charter_airflow.guardrail_tasks import Checked, GuardrailStep, Recorded, StepRun, _dataset, _file_of
from charter_airflow.runtime import persist_and_gate, run_ids, work_dir

if TYPE_CHECKING:
    from charter_guardrails.checks.integrity.outcome import Verification
    from charter_guardrails.checks.integrity.pin import PinnedFile
    from charter_guardrails.checks.integrity.table_verification import PinnedTable
    from charter_guardrails.checks.integrity.verification import ManifestSnapshot
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.core.policy_models import Dataset
    from charter_guardrails.readers.objects import ObjectInfo

log = logging.getLogger(__name__)

#: The task whose XCom holds the run's pin (the integrity step of the refresh and inference DAGs).
PIN_TASK = "verify_integrity"


def call_integrity(verify_file: Callable[..., Any], run: StepRun) -> Checked:
    """Sûreté 2: the file (or a ``format: sql`` dataset's table, verified in place) is exactly what was registered;
    a mismatch is an incident, in the result's transaction. What is intact is pinned: the XCom carries what later
    steps hold the file or the table to."""
    from charter_guardrails.checks.integrity.manifest import Outcome
    from charter_guardrails.checks.integrity.manifest_registry import (
        active_manifest,
        ensure_dataset_record,
        record_verification,
    )
    from charter_guardrails.checks.integrity.object_verification import check_identity
    from charter_guardrails.checks.integrity.pin import pin_of
    from charter_guardrails.checks.integrity.table_verification import PinnedTable, verify_table
    from charter_guardrails.checks.integrity.verification import ManifestSnapshot
    from charter_guardrails.core.errors import KeyError_
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.ledger.store import ledger_session

    policy, spec = run.policy, _dataset(run)
    with ledger_session() as session:
        row = active_manifest(session, policy.id, spec.id)
        manifest = ManifestSnapshot.of(row) if row is not None else None
    location: str | Path
    if run.file is None and spec.table is not None:  # a SQL table, verified in its database
        location = spec.table
        verification = verify_table(spec.table, manifest, use_case=policy.id, dataset=spec.id)
        pinned = PinnedTable.of(verification)
        pin = pinned.to_json_dict() if pinned else None
    else:
        location, staged = _file_of(run), None
        if spec.is_object:  # the object is copied under the data folder first: every step reads that copy
            location, staged = _stage(run, spec)
        verification = verify_file(location, manifest, use_case=policy.id, dataset=spec.id)
        if staged is not None:
            verification = check_identity(verification, manifest.document if manifest else None, staged)
        version_id = staged.version_id if staged else None
        pinned_file = (
            pin_of(verification, manifest.document, get_settings().data_dir, version_id=version_id)
            if manifest
            else None
        )
        pin = pinned_file.to_json_dict() if pinned_file else None
    if verification.outcome is Outcome.KEY_MISSING:
        raise KeyError_(verification.summary)  # configuration: fix the key, then Airflow's retry succeeds

    def record(session: Any, _check_run: Any, _row: Any) -> None:
        dataset_id = manifest.dataset_id if manifest else ensure_dataset_record(session, policy, spec.id, location).id
        record_verification(session, verification, dataset_id=dataset_id, run_id=run.run_id)

    result, incident = verification.to_check_result(), verification.incident_draft(run.run_id)
    return Checked(recorded=(Recorded(result, incident=incident, extra=record),), pin=pin)


def _stage(run: StepRun, spec: Dataset) -> tuple[Path, ObjectInfo]:
    """Stage the run's object (the batch its parameters or asset event name, else the dataset's uri)."""
    from charter_airflow.object_storage import stage_for_run
    from charter_airflow.runtime import batch_of_asset_events

    return stage_for_run(spec, run.requested or batch_of_asset_events(run.context))


def _pushed_pin(task_id: str, context: Mapping[str, Any], what: str) -> dict[str, Any] | None:
    """The pin in the integrity step's XCom (None without a task instance); inside Airflow a missing pin fails
    the task ``task_id`` (not retried)."""
    from airflow.sdk.exceptions import AirflowFailException

    ti = context.get("ti")
    if ti is None:
        return None
    pushed = ti.xcom_pull(task_ids=PIN_TASK)
    if not isinstance(pushed, Mapping) or pushed.get("pin") is None:
        raise AirflowFailException(
            f"{task_id}: no pinned reference from {PIN_TASK} in this run, so the {what} cannot be shown to be the "
            f"one verified; clear {PIN_TASK} and the tasks after it (or re-run the DAG)"
        )
    return dict(pushed["pin"])


def pin_of_run(task_id: str, context: Mapping[str, Any], file: Path | None) -> PinnedFile | None:
    """The pin ``file`` must match: None for a SQL table (no file) or a call without a task instance. Inside
    Airflow a missing pin, or a pin of another file, fails the task ``task_id`` (not retried)."""
    from airflow.sdk.exceptions import AirflowFailException
    from charter_guardrails.checks.integrity.pin import PinnedFile
    from charter_guardrails.core.settings import get_settings

    pushed = _pushed_pin(task_id, context, "file") if file is not None else None
    if file is None or pushed is None:
        return None
    pin = PinnedFile.from_json_dict(pushed)
    root = get_settings().data_dir.resolve()
    if file.resolve() != (root / pin.path).resolve():
        raise AirflowFailException(
            f"{task_id}: it reads {file.name} but {PIN_TASK} verified {Path(pin.path).name} in this run; "
            "give both the same delivery (the run's params), then re-run the DAG"
        )
    return pin


def enforce_pin(
    step: GuardrailStep,
    *,
    policy: UseCasePolicy,
    context: Mapping[str, Any],
    file: Path | None,
    dataset: Dataset | None = None,
) -> PinnedFile | PinnedTable | None:
    """The run's pin of ``file`` (see :func:`pin_of_run`); for a ``"check"`` step, ``file`` is hashed again first
    and a mismatch is recorded as the integrity verdict and incident, then fails the task. A SQL table read in
    place (no ``file``) is re-hashed against its pin by every ``"check"`` step (:func:`enforce_table_pin`); a
    ``"copy"`` step gets the table's pin and holds its copy to it."""
    from charter_guardrails.checks.integrity.pin import verify_pinned

    if step.pin is None:
        return None
    if file is None and dataset is not None and dataset.table is not None:
        if step.pin == "copy":  # the step hashes the rows it copies (call_pseudonymise): no pass before it
            return table_pin_of_run(step.task_id, context, dataset.table)
        enforce_table_pin(step.task_id, policy=policy, context=context, table=dataset.table)
        return None
    pin = pin_of_run(step.task_id, context, file)
    if pin is None or file is None or step.pin != "check":
        return pin
    manifest = _manifest(pin)
    verification = verify_pinned(file, pin, document=manifest.document if manifest else None)
    if not verification.intact:
        _record(_refusal(verification, manifest, run_ids(context)[1]), policy=policy, context=context, fail=True)
    return pin


def table_pin_of_run(task_id: str, context: Mapping[str, Any], table: str) -> PinnedTable | None:
    """The run's pin of ``table`` (None without a task instance). Inside Airflow a missing pin, or a pin of another
    table, fails the task ``task_id`` (not retried)."""
    from airflow.sdk.exceptions import AirflowFailException
    from charter_guardrails.checks.integrity.table_verification import PinnedTable

    pushed = _pushed_pin(task_id, context, "table")
    if pushed is None:
        return None
    pin = PinnedTable.from_json_dict(pushed)
    if pin.table != table:
        raise AirflowFailException(
            f"{task_id}: it reads the table {table} but {PIN_TASK} verified the table {pin.table} in this run; "
            "re-run the DAG"
        )
    return pin


def _table_manifest(pin: PinnedTable) -> ManifestSnapshot:
    """The manifest the table's pin was taken from (its key ranges are what the rows are hashed over again)."""
    from charter_guardrails.core.errors import ManifestUnusable

    manifest = _manifest(pin)
    if manifest is None:
        raise ManifestUnusable(
            f"{pin.use_case}.{pin.dataset}: the manifest #{pin.manifest_id} the table was verified against is no "
            "longer in the ledger; re-run the DAG from its integrity step"
        )
    return manifest


def enforce_table_pin(task_id: str, *, policy: UseCasePolicy, context: Mapping[str, Any], table: str) -> None:
    """Re-hash ``table`` over its manifest's key ranges: a table whose rows no longer hash to the run's pinned root
    is recorded as the integrity verdict and incident of a mismatch (the changed key ranges), then fails the task.
    Without a task instance (a direct call of ``run_step``) there is no pin, and nothing to hold the table to."""
    from charter_guardrails.checks.integrity.table_verification import verify_pinned_table

    pin = table_pin_of_run(task_id, context, table)
    if pin is None:
        return
    manifest = _table_manifest(pin)
    verification = verify_pinned_table(pin, manifest.document)
    if not verification.intact:
        _record(_refusal(verification, manifest, run_ids(context)[1]), policy=policy, context=context, fail=True)


def _manifest(pin: PinnedFile | PinnedTable) -> ManifestSnapshot | None:
    """The manifest the pin was taken from (its chunk list localises a change), if the ledger still has it."""
    from charter_guardrails.checks.integrity.verification import ManifestSnapshot
    from charter_guardrails.ledger.models import Manifest
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        row = session.get(Manifest, pin.manifest_id)
        return ManifestSnapshot.of(row) if row is not None else None


def _refusal(verification: Verification, manifest: ManifestSnapshot | None, run_id: str) -> Checked:
    """The failing integrity verdict of a file that no longer matches its pin, with its incident and its
    verification row, as the integrity step records a mismatch."""
    from charter_guardrails.checks.integrity.manifest_registry import record_verification

    def record(session: Any, _check_run: Any, _row: Any) -> None:
        if manifest is not None:
            record_verification(session, verification, dataset_id=manifest.dataset_id, run_id=run_id)

    log.warning("%s: refused, %s", verification.dataset, verification.summary)
    return Checked.of(verification.to_check_result(), incident=verification.incident_draft(run_id), extra=record)


def _record(checked: Checked, *, policy: UseCasePolicy, context: Mapping[str, Any], fail: bool) -> None:
    for item in checked.recorded:
        persist_and_gate(
            item.result,
            policy=policy,
            context=context,
            incident=item.incident,
            extra=item.extra,
            fail_on=("fail",) if fail else (),
        )


def call_pseudonymise(pseudonymise_frame: Callable[..., Any], run: StepRun) -> Checked:
    """Write the training-ready Parquet copy (identifiers keyed-hashed, free text masked); return its path.

    With a pin, the delivery is read once into the run's work folder and pseudonymised from that copy only if the
    copy is the verified file; the raw copy is removed once the pseudonymised one is written. A ``format: sql``
    dataset is copied from its table, the rows hashed against the table's pin in the same pass
    (:func:`_pseudonymise_table`).
    """
    from charter_guardrails.checks.integrity.pin import PinnedFile, copy_pinned, discard
    from charter_guardrails.checks.privacy.pseudonymise import copy_metadata, write_frame
    from charter_guardrails.core.keys import KEY_DERIVATION_HKDF, pseudonymisation_key_for
    from charter_guardrails.readers.files import read_dataset

    spec = _dataset(run)
    if run.file is None and spec.table is not None:
        return _pseudonymise_table(run, spec)
    source = _file_of(run)
    folder = work_dir(run.policy, run.context)
    verified = folder / f"{spec.id}__verified{''.join(source.suffixes)}"
    if isinstance(run.pin, PinnedFile):
        manifest = _manifest(run.pin)
        verification = copy_pinned(source, run.pin, verified, document=manifest.document if manifest else None)
        if not verification.intact:
            return _refusal(verification, manifest, run.run_id)  # integrity is not overridable: the task fails
        source = verified
    # The use case's own key: its pseudonyms cannot be joined with another use case's.
    key = pseudonymisation_key_for(run.policy.id, KEY_DERIVATION_HKDF)
    try:
        frame, report = pseudonymise_frame(read_dataset(spec, source), spec, key)
    finally:
        if source == verified:
            discard(verified)  # raw personal data: not kept in the work folder
    target = folder / f"{spec.id}__pseudonymised.parquet"
    write_frame(frame, target, metadata=copy_metadata(run.policy.id, spec.id, KEY_DERIVATION_HKDF))
    return _pseudonymised(run, report, target)


def _pseudonymise_table(run: StepRun, spec: Dataset) -> Checked:
    """A ``format: sql`` dataset: the declared columns of the pinned rows, pseudonymised chunk by chunk into the
    Parquet copy in the one pass that hashes the rows again; the integrity verdict of a mismatch if they changed."""
    from charter_guardrails.checks.integrity.table_verification import PinnedTable
    from charter_guardrails.checks.privacy.pseudonymise_table import pseudonymise_table
    from charter_guardrails.core.keys import KEY_DERIVATION_HKDF, pseudonymisation_key_for

    pin = run.pin if isinstance(run.pin, PinnedTable) else None
    manifest = _table_manifest(pin) if pin is not None else None
    target = work_dir(run.policy, run.context) / f"{spec.id}__pseudonymised.parquet"
    verification, report = pseudonymise_table(
        spec,
        target,
        use_case=run.policy.id,
        key=pseudonymisation_key_for(run.policy.id, KEY_DERIVATION_HKDF),
        derivation=KEY_DERIVATION_HKDF,
        pin=pin,
        document=manifest.document if manifest else None,
    )
    if report is None and verification is not None:
        return _refusal(verification, manifest, run.run_id)  # integrity is not overridable: the task fails
    assert report is not None  # noqa: S101 - a copy without a verification is always written
    return _pseudonymised(run, report, target)


def _pseudonymised(run: StepRun, report: Any, target: Path) -> Checked:
    log.info(
        "pseudonymised %s/%s: %d rows, hashed %s, masked %s, dropped %s -> %s",
        run.policy.id,
        _dataset(run).id,
        report.rows,
        report.hashed_columns,
        report.masked_columns,
        report.dropped_columns,
        target,
    )
    return Checked(output=str(target))


def accept_verified(policy: UseCasePolicy, context: Mapping[str, Any], source: Path, target: Path) -> bool:
    """Copy an accepted batch to ``target``, the verified bytes only: False (and the integrity verdict and incident
    recorded, not raised) when the batch no longer matches the run's pin; the caller then quarantines it."""
    import shutil

    from charter_guardrails.checks.integrity.pin import copy_pinned

    pin = pin_of_run("route_batch", context, source)
    if pin is None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return True
    manifest = _manifest(pin)
    verification = copy_pinned(source, pin, target, document=manifest.document if manifest else None)
    if not verification.intact:
        _record(_refusal(verification, manifest, run_ids(context)[1]), policy=policy, context=context, fail=False)
    return verification.intact


#: The integrity step of the monitor (the refresh and inference DAGs declare theirs with a role and a file param).
INTEGRITY_STEP = GuardrailStep(
    task_id="verify_dataset_integrity",
    function="charter_guardrails.checks.integrity.verification:verify_file",
    call=call_integrity,
    checks=(CheckName.INTEGRITY,),
)
