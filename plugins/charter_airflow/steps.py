"""The guardrail steps of the generated DAGs, as plain functions of (policy, context).

Each step runs its library check and hands the result to :func:`charter_airflow.runtime.persist_and_gate`.
Steps that feed the gate never raise for an *overridable* failure: the gate sees every verdict
and a human may override it. Integrity, personal data, proportionality and the kill switch raise
at once (``AirflowFailException``), so nothing downstream runs on data that is not safe.

All heavy imports happen inside the functions: this module is imported at DAG parse time.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charter_airflow.runtime import configure_from_airflow, persist_and_gate, run_ids

log = logging.getLogger(__name__)

OVERRIDABLE_FAIL_ON: tuple[str, ...] = ()  # record, let the gate decide
HARD_FAIL_ON: tuple[str, ...] = ("fail",)


def load(policy_file: str) -> Any:
    from charter_guardrails.core.policy import UseCasePolicy

    configure_from_airflow()
    return UseCasePolicy.from_file(policy_file)


def delivery(context: Mapping[str, Any], conf_key: str) -> str | None:
    """The file a run was asked to check instead of the policy's (``params[conf_key]``), relative to the data folder."""
    value = (context.get("params") or {}).get(conf_key)
    return str(value) if value else None


def work_dir(policy: Any, context: Mapping[str, Any]) -> Path:
    from charter_guardrails.core.settings import get_settings

    _, run_id = run_ids(context)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    path = get_settings().home / "work" / policy.id / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


def kill_switch(policy: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    from charter_guardrails.decision.model_registry import check_kill_switch
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        result = check_kill_switch(session, policy.id)
    return persist_and_gate(result, policy=policy, context=context, fail_on=HARD_FAIL_ON)


def finish_run(
    policy: Any,
    context: Mapping[str, Any],
    *,
    decision: str,
    blocked_by: list[str],
    reports: dict[str, Any] | None = None,
    actor: str = "charter-guardrails",
) -> None:
    from charter_guardrails.ledger.store import finish_check_run, get_or_create_check_run, ledger_session

    dag_id, run_id = run_ids(context)
    with ledger_session() as session:
        run = get_or_create_check_run(session, use_case=policy.id, dag_id=dag_id, run_id=run_id)
        finish_check_run(session, run, decision=decision, blocked_by=blocked_by, reports=reports, actor=actor)


def run_results(policy: Any, context: Mapping[str, Any]) -> list[Any]:
    from charter_guardrails.ledger.store import get_or_create_check_run, ledger_session, results_for_run

    dag_id, run_id = run_ids(context)
    with ledger_session() as session:
        run = get_or_create_check_run(session, use_case=policy.id, dag_id=dag_id, run_id=run_id)
        return results_for_run(session, run)


def gate(policy: Any, context: Mapping[str, Any], expected: tuple[str, ...]) -> dict[str, Any]:
    """Decide; a blocked run is recorded and fails here, so the approval and publish never run."""
    from airflow.sdk.exceptions import AirflowFailException
    from charter_guardrails.decision.gate import decide
    from charter_guardrails.reporting.brief import render_approval_brief

    results = run_results(policy, context)
    decision = decide(results, expected)
    if decision.blocked:
        finish_run(policy, context, decision="blocked", blocked_by=decision.blocked_by)
        raise AirflowFailException(
            f"refresh of {policy.id} blocked by {', '.join(decision.blocked_by)}: "
            + "; ".join(f"{name}: {decision.reasons[name]}" for name in decision.blocked_by)
        )
    return {"decision": decision.to_json_dict(), "body": render_approval_brief(policy, results, decision)}


def publish(
    policy: Any,
    context: Mapping[str, Any],
    *,
    gate_output: dict[str, Any],
    answer: dict[str, Any] | None,
    candidate: dict[str, Any],
) -> dict[str, Any]:
    """Apply the human answer; on approval or justified override, register the version and its model card."""
    from airflow.sdk.exceptions import AirflowSkipException
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.decision.gate import GateDecision, review
    from charter_guardrails.decision.model_registry import publish_version, record_approval, set_card_path
    from charter_guardrails.ledger.store import ledger_session

    decision = GateDecision.model_validate(gate_output["decision"])
    answer = answer or {}
    choice = (answer.get("chosen_options") or ["Reject"])[0]
    justification = (answer.get("params_input") or {}).get("justification")
    responder = answer.get("responded_by_user") or {}
    actor = str(responder.get("name") or responder.get("id") or "unknown")
    outcome = review(decision, choice, justification)
    _, run_id = run_ids(context)
    if not outcome.publish:
        with ledger_session() as session:
            record_approval(
                session,
                use_case=policy.id,
                run_id=run_id,
                decision="rejected",
                actor=actor,
                justification=outcome.reason,
            )
        finish_run(policy, context, decision="rejected", blocked_by=decision.blocked_by, actor=actor)
        raise AirflowSkipException(f"not published: {outcome.reason}")

    models_dir = get_settings().home / "models" / policy.id
    models_dir.mkdir(parents=True, exist_ok=True)
    with ledger_session() as session:
        record_approval(
            session,
            use_case=policy.id,
            run_id=run_id,
            decision=outcome.decision,
            actor=actor,
            justification=justification if outcome.decision == "overridden" else None,
            overridden_checks=decision.overridable if outcome.decision == "overridden" else [],
        )
        version = publish_version(
            session,
            use_case=policy.id,
            run_id=run_id,
            metrics=candidate.get("metrics", {}),
            artifact_path=None,
            artifact_sha256=candidate.get("artifact_sha256"),
            approved_by=actor,
        )
        number = version.version
    artifact = models_dir / f"v{number}.joblib"
    if candidate.get("artifact_path"):
        shutil.copyfile(candidate["artifact_path"], artifact)
    card = write_card(
        policy,
        context,
        version=number,
        approver=actor,
        decision=outcome.decision,
        overrides=[{"checks": decision.overridable, "justification": justification, "actor": actor}]
        if outcome.decision == "overridden"
        else [],
        candidate=candidate,
        out_dir=models_dir / f"v{number}",
    )
    with ledger_session() as session:
        from charter_guardrails.decision.model_registry import production_version

        current = production_version(session, policy.id)
        if current is not None and current.version == number:
            current.artifact_path = str(artifact)
            set_card_path(session, current, card, actor)
    finish_run(policy, context, decision=outcome.decision, blocked_by=[], reports={"model_card": card}, actor=actor)
    log.info("%s v%s %s by %s", policy.id, number, outcome.decision, actor)
    return {"version": number, "decision": outcome.decision, "approver": actor, "model_card": card}


def write_card(
    policy: Any,
    context: Mapping[str, Any],
    *,
    version: int,
    approver: str,
    decision: str,
    overrides: list[dict[str, Any]],
    candidate: dict[str, Any],
    out_dir: Path,
) -> str:
    from charter_guardrails.reporting.model_card import write_model_card

    _, run_id = run_ids(context)
    results = run_results(policy, context)
    fairness: dict[str, Any] = next((r.evidence for r in results if r.check == "fairness"), {})
    paths = write_model_card(
        policy,
        version=version,
        run_id=run_id,
        metrics=candidate.get("metrics", {}),
        fairness=fairness,
        energy=candidate.get("energy", {}),
        approver=approver,
        decision=decision,
        overrides=overrides,
        results=results,
        data_period=candidate.get("data_period", {}),
        out_dir=out_dir,
    )
    return str(paths.html)


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat()


def verify_integrity(policy: Any, context: Mapping[str, Any], dataset_id: str, conf_key: str) -> dict[str, Any]:
    """Sûreté 2: the file is exactly what was registered; any corruption is an incident. Never overridable."""
    from charter_airflow.tasks.integrity import verify_dataset_integrity_step

    return verify_dataset_integrity_step(
        use_case=policy.id, dataset=dataset_id, path=delivery(context, conf_key), context=context
    )


def scan_personal_data(policy: Any, context: Mapping[str, Any], dataset_id: str, conf_key: str) -> dict[str, Any]:
    """Sûreté 1 and Proportionnalité 3: personal data only where the policy allows it. Never overridable."""
    from charter_airflow.tasks.privacy import scan_personal_data_step

    return scan_personal_data_step(policy=policy, dataset=dataset_id, path=delivery(context, conf_key), context=context)


def pseudonymise(policy: Any, context: Mapping[str, Any], dataset_id: str, conf_key: str) -> str:
    from charter_airflow.tasks.privacy import pseudonymise_dataset_step

    return pseudonymise_dataset_step(
        policy=policy, dataset=dataset_id, path=delivery(context, conf_key), context=context
    )


def validate_quality(
    policy: Any, context: Mapping[str, Any], dataset_id: str, conf_key: str, *, hard: bool = False
) -> dict[str, Any]:
    from charter_airflow.tasks.quality import validate_quality_step

    return validate_quality_step(
        use_case=policy.id,
        dataset=dataset_id,
        path=delivery(context, conf_key),
        context=context,
        fail_on=HARD_FAIL_ON if hard else OVERRIDABLE_FAIL_ON,
    )


def check_representativeness(policy: Any, context: Mapping[str, Any], dataset_id: str, conf_key: str) -> dict[str, Any]:
    from charter_airflow.tasks.quality import check_representativeness_step

    return check_representativeness_step(
        use_case=policy.id,
        dataset=dataset_id,
        path=delivery(context, conf_key),
        context=context,
        fail_on=OVERRIDABLE_FAIL_ON,
    )


def check_drift(policy: Any, context: Mapping[str, Any], dataset_id: str, conf_key: str) -> dict[str, Any]:
    from charter_airflow.tasks.quality import check_drift_step

    return check_drift_step(
        use_case=policy.id,
        dataset=dataset_id,
        path=delivery(context, conf_key),
        context=context,
        fail_on=OVERRIDABLE_FAIL_ON,
    )


def check_proportionality(policy: Any, context: Mapping[str, Any], pseudonymised: str) -> str:
    """Minimise the pseudonymised training data; write the frame training may see. Never overridable."""
    import pandas as pd
    from charter_guardrails.checks.proportionality import check_proportionality as check

    frame = pd.read_parquet(pseudonymised)
    minimised, result = check(policy, policy.training_dataset, frame, as_of=datetime.now(UTC))
    persist_and_gate(result, policy=policy, context=context, fail_on=HARD_FAIL_ON)
    out = work_dir(policy, context) / "training.minimised.parquet"
    minimised.to_parquet(out, index=False)
    return str(out)


def train(policy: Any, context: Mapping[str, Any], minimised: str) -> dict[str, Any]:
    """Train the candidate on the minimised frame only, measuring its energy (codecarbon, offline, FRA)."""
    import pandas as pd
    from charter_guardrails.refresh.training import train_candidate

    frame = pd.read_parquet(minimised)
    candidate = train_candidate(policy, frame, artifact_dir=work_dir(policy, context) / "candidate")
    return candidate.to_json_dict()


def _production_model(policy: Any) -> Any:
    from charter_guardrails.decision.model_registry import production_version
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.refresh.training import load_model

    with ledger_session() as session:
        version = production_version(session, policy.id)
        if version is None or not version.artifact_path or not version.artifact_sha256:
            return None
        path, sha = version.artifact_path, version.artifact_sha256
    return load_model(path, sha)  # refuses an artifact changed since it was published


def evaluate(policy: Any, context: Mapping[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """Candidate against production on the same held-out rows; fairness per group (fairlearn MetricFrame)."""
    from charter_guardrails.refresh.evaluation import check_fairness, check_performance, evaluate_candidate
    from charter_guardrails.refresh.training import load_trained_model

    trained = load_trained_model(candidate)
    report = evaluate_candidate(policy, trained, _production_model(policy))
    for result in (check_performance(policy, report), check_fairness(policy, report)):
        persist_and_gate(result, policy=policy, context=context, fail_on=OVERRIDABLE_FAIL_ON)
    return report.to_json_dict()


def footprint(
    policy: Any, context: Mapping[str, Any], candidate: dict[str, Any], evaluation: dict[str, Any]
) -> dict[str, Any]:
    """Durabilité: is the gain worth the energy of the refresh?"""
    from charter_guardrails.refresh.footprint import check_footprint

    result = check_footprint(policy, float(evaluation.get("gain") or 0.0), candidate.get("energy") or {})
    return persist_and_gate(result, policy=policy, context=context, fail_on=OVERRIDABLE_FAIL_ON)


def route_batch(policy: Any, context: Mapping[str, Any], dataset_id: str, conf_key: str) -> dict[str, Any]:
    """Pass the batch on when every guardrail passed; otherwise quarantine it and raise an incident."""
    from airflow.sdk.exceptions import AirflowFailException
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.decision.gate import INFERENCE_CHECKS, decide
    from charter_guardrails.incidents.incident import BreachType, IncidentDraft, raise_incident
    from charter_guardrails.ledger.store import ledger_session

    source = policy.dataset(dataset_id).delivery(delivery(context, conf_key))
    decision = decide(run_results(policy, context), INFERENCE_CHECKS)
    _, run_id = run_ids(context)
    if decision.outcome.value == "needs_approval":
        target = get_settings().data_dir / policy.id / "accepted" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        finish_run(policy, context, decision="passed", blocked_by=[], reports={"batch": str(target)})
        return {"decision": "passed", "batch": str(target)}
    quarantine = get_settings().data_dir / policy.id / "quarantine" / f"{run_id.replace(':', '_')}__{source.name}"
    quarantine.parent.mkdir(parents=True, exist_ok=True)
    if source.exists():
        shutil.copyfile(source, quarantine)
    with ledger_session() as session:
        incident, _ = raise_incident(
            session,
            policy,
            IncidentDraft(
                breach_type=BreachType.AVAILABILITY
                if set(decision.blocked_by) <= {"quality", "drift"}
                else BreachType.INTEGRITY,
                severity="warning" if set(decision.blocked_by) <= {"quality", "drift"} else "critical",
                dataset=dataset_id,
                run_id=run_id,
                title=f"Lot d'inférence mis en quarantaine ({', '.join(decision.blocked_by)})",
                nature="lot d'inférence refusé par les garde-fous de la charte : "
                + "; ".join(f"{k} : {v}" for k, v in decision.reasons.items()),
                facts={"blocked_by": decision.blocked_by, "quarantine": quarantine.name},
                likely_consequences="des prédictions produites sur des données hors du domaine appris seraient peu fiables pour les usagers",
                measures_taken=["lot mis en quarantaine", "aucune prédiction produite sur ce lot"],
            ),
        )
        incident_id = incident.id
    finish_run(
        policy, context, decision="quarantined", blocked_by=decision.blocked_by, reports={"quarantine": str(quarantine)}
    )
    raise AirflowFailException(
        f"batch quarantined ({', '.join(decision.blocked_by)}); incident #{incident_id}; copy at {quarantine}"
    )
