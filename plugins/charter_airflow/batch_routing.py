"""The last task of the inference DAG: an incoming batch passed on, scored and announced, or quarantined.

An accepted batch is scored by the production model (``charter_guardrails.decision.scoring``): its predictions
are written beside the accepted copy and their distribution recorded in the ledger, in one transaction. A batch
that cannot be scored (no production model, the kill switch on, a failing model) keeps its acceptance: the ledger
records it as not scored with the reason, and the Asset event is emitted with ``predictions: null``. Only an
unreachable ledger fails the task, which Airflow retries (the routing and the scoring are idempotent per run).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter_guardrails.core.policy import UseCasePolicy
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

        from charter_airflow import publish
        from charter_airflow.runtime import load_policy

        policy = load_policy(policy_file)
        routed = publish.route_batch(
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
