"""The last task of the inference DAG: an incoming batch passed on, scored and announced, or quarantined.

An accepted batch is scored by the production model (``charter_guardrails.decision.scoring``): its predictions
are written beside the accepted copy and their distribution recorded in the ledger, in one transaction. A batch
that cannot be scored (no production model, the kill switch on, a failing model) keeps its acceptance: the ledger
records it as not scored with the reason, and the Asset event is emitted with ``predictions: null``. Only an
unreachable ledger fails the task, which Airflow retries (the routing and the scoring are idempotent per run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.decision.gate import GateDecision
    from charter_guardrails.decision.scoring import ScoringOutcome


def accepted_batch_asset_uri(use_case: str) -> str:
    """The Asset a batch that passed every guardrail of ``use_case`` updates (``route_batch``'s outlet)."""
    return f"charter://{use_case}/accepted_batch"


def route_task(policy_file: Path, use_case: str) -> Any:
    """Pass the batch on or quarantine it. Passed, it is scored by the production model and emits the
    ``accepted_batch`` Asset event (what downstream DAGs schedule on), its extra naming the batch, its manifest,
    the run and the predictions; quarantined, the task fails, nothing is scored and nothing is emitted."""
    from airflow.sdk import Asset, TriggerRule, task

    accepted = Asset(accepted_batch_asset_uri(use_case))

    @task(task_id="route_batch", trigger_rule=TriggerRule.ALL_DONE, outlets=[accepted])
    def route_batch(**context: Any) -> dict[str, Any]:
        from charter_guardrails.decision.gate import INFERENCE_CHECKS

        from charter_airflow.runtime import load_policy

        policy = load_policy(policy_file)
        routed = route(
            policy, context, role="inference", file_param="batch_file", expected=INFERENCE_CHECKS
        )  # raises unless the batch passed: a quarantined batch is never scored
        scoring = score_accepted(policy, Path(str(routed["batch"])), context)
        extra = {
            **_accepted_extra(routed, context),
            **_predictions_extra(scoring),
            **_object_extra(policy, scoring, context),
        }
        context["outlet_events"][accepted].extra = extra
        return {**routed, "predictions": scoring.summary()}

    return route_batch


def _accepted_extra(routed: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """What the ``accepted_batch`` event carries: the accepted copy (relative to the data folder), the manifest
    the batch was verified against, and the run. Paths and ids only."""
    from charter_guardrails.core.settings import get_settings

    pin = _pin(context)
    batch = Path(str(routed.get("batch", "")))
    data_dir = get_settings().data_dir.resolve()
    relative = batch.resolve().relative_to(data_dir).as_posix() if batch.resolve().is_relative_to(data_dir) else None
    return {
        "batch": relative,
        "manifest_id": pin.get("manifest_id"),
        "merkle_root": pin.get("merkle_root"),
        "dag_id": context["dag"].dag_id if "dag" in context else None,
        "run_id": getattr(context.get("dag_run"), "run_id", None),
    }


def _object_extra(policy: UseCasePolicy, scoring: ScoringOutcome, context: Mapping[str, Any]) -> dict[str, Any]:
    """For a batch delivered as an object: the object and the version that was verified, and the predictions
    written beside it in the bucket."""
    from charter_guardrails.core.policy_models import DatasetRole

    from charter_airflow.object_batches import batch_uri, publish_predictions

    dataset = policy.datasets_with_role(DatasetRole.INFERENCE)[0]
    if not dataset.is_object:
        return {}
    pin = _pin(context)
    predictions = (
        publish_predictions(dataset, context, "batch_file", scoring.predictions)
        if scoring.scored and scoring.predictions is not None
        else None
    )
    return {
        "object": batch_uri(dataset, context, "batch_file"),
        "version_id": pin.get("version_id"),
        "predictions_object": predictions,
    }


def _pin(context: Mapping[str, Any]) -> dict[str, Any]:
    """The pin the run's integrity step pushed (digests, sizes and the version id only); empty without one."""
    pushed = context["ti"].xcom_pull(task_ids="verify_integrity") if "ti" in context else None
    return dict((pushed or {}).get("pin") or {})


def score_accepted(policy: UseCasePolicy, batch: Path, context: Mapping[str, Any]) -> ScoringOutcome:
    """Score the accepted copy with the production model and record it, in one ledger transaction."""
    from charter_guardrails.decision.scoring import score_batch
    from charter_guardrails.ledger.store import ledger_session

    from charter_airflow.runtime import run_ids

    dag_id, run_id = run_ids(context)
    with ledger_session() as session:
        return score_batch(session, policy, batch, dag_id=dag_id, run_id=run_id)


def _predictions_extra(scoring: ScoringOutcome) -> dict[str, Any]:
    """The scoring in the event: the predictions file (relative to the data folder) and the model version, or
    why the batch was not scored. No prediction itself."""
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.core.stored_paths import to_stored

    return {
        "predictions": to_stored(scoring.predictions, get_settings().data_dir) if scoring.scored else None,
        "model_version": scoring.model_version,
        "not_scored": None if scoring.scored else scoring.reason,
    }


def route(
    policy: UseCasePolicy, context: Mapping[str, Any], *, role: str, file_param: str, expected: Iterable[str]
) -> dict[str, Any]:
    """Pass the batch on when every guardrail passed; otherwise quarantine it and raise an incident."""
    import shutil

    from airflow.sdk.exceptions import AirflowFailException
    from charter_guardrails.core.policy_models import DatasetRole
    from charter_guardrails.decision.gate import GateOutcome, decide

    from charter_airflow.pinned_steps import accept_verified
    from charter_airflow.publish import finish_run, run_results
    from charter_airflow.runtime import accepted_path, delivered_file, quarantine_path, requested_delivery, run_ids

    dataset = policy.datasets_with_role(DatasetRole(role))[0]
    source = delivered_file(dataset, context, file_param=file_param, use_case=policy.id)
    decision = decide(run_results(policy, context), expected)
    _, run_id = run_ids(context)
    target = accepted_path(policy.id, run_id, source.name)
    if decision.outcome is GateOutcome.NEEDS_APPROVAL:  # the verified bytes only (else an integrity verdict)
        if accept_verified(policy, context, source, target):
            finish_run(policy, context, decision="passed", blocked_by=[], reports={"batch": str(target)})
            return {"decision": "passed", "batch": str(target)}
        decision = decide(run_results(policy, context), expected)
    quarantine = quarantine_path(policy.id, run_id, source.name)
    if source.parent == quarantine.parent:  # moved there by an earlier attempt of this run: a retry
        quarantine = source
    quarantine.parent.mkdir(parents=True, exist_ok=True)
    # A delivery (named by the run's params or its asset event) and an object's staged copy leave for the
    # quarantine folder, so nothing can pick them up again. The policy's own file stays where every scheduled
    # run reads it (moving it would turn the next run into a missing-file error): it is copied.
    declared = not dataset.is_object and requested_delivery(context, file_param) is None
    if source.exists() and source != quarantine:
        (shutil.copyfile if declared else shutil.move)(source, quarantine)
    reports = {"quarantine": str(quarantine)}
    if dataset.is_object:  # the object itself leaves the deliveries, for the bucket's quarantine/ prefix
        from charter_airflow.object_batches import quarantine_object

        reports["quarantined_object"] = quarantine_object(dataset, context, file_param, run_id)
    incident_id = _quarantine_incident(policy, decision, dataset=dataset.id, run_id=run_id, quarantine=quarantine)
    finish_run(policy, context, decision="quarantined", blocked_by=decision.blocked_by, reports=reports)
    raise AirflowFailException(
        f"batch quarantined ({', '.join(decision.blocked_by)}); incident #{incident_id}; "
        f"{'copied' if declared else 'moved'} to {quarantine}"
    )


def _quarantine_incident(
    policy: UseCasePolicy, decision: GateDecision, *, dataset: str, run_id: str, quarantine: Path
) -> int:
    """The incident of a quarantined batch: an availability one when only quality or drift failed."""
    from charter_guardrails.core.catalogue import CheckName
    from charter_guardrails.incidents.incident import BreachType, IncidentDraft, raise_incident
    from charter_guardrails.ledger.store import ledger_session

    data_only = set(decision.blocked_by) <= {CheckName.QUALITY, CheckName.DRIFT}
    with ledger_session() as session:
        incident, _ = raise_incident(
            session,
            policy,
            IncidentDraft(
                breach_type=BreachType.AVAILABILITY if data_only else BreachType.INTEGRITY,
                severity="warning" if data_only else "critical",
                dataset=dataset,
                run_id=run_id,
                title=f"Lot d'inférence mis en quarantaine ({', '.join(decision.blocked_by)})",
                nature="lot d'inférence refusé par les garde-fous de la charte : "
                + "; ".join(f"{k} : {v}" for k, v in decision.reasons.items()),
                facts={"blocked_by": decision.blocked_by, "quarantine": quarantine.name},
                likely_consequences="des prédictions produites sur des données hors du domaine appris "
                "seraient peu fiables pour les usagers",
                measures_taken=["lot mis en quarantaine", "aucune prédiction produite sur ce lot"],
            ),
        )
        return int(incident.id)
