"""What follows the guardrails of a refresh: the gate, the human answer applied and the model published (the
inference batch's routing is in ``batch_routing.py``).

Each function is the body of one task of the generated DAGs (see ``dag_factory.py``); all heavy
imports happen inside them.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from charter_airflow.runtime import run_ids

if TYPE_CHECKING:
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.decision.gate import GateDecision

log = logging.getLogger(__name__)


def finish_run(
    policy: UseCasePolicy,
    context: Mapping[str, Any],
    *,
    decision: str,
    blocked_by: list[str],
    reports: dict[str, Any] | None = None,
    actor: str = "charter-guardrails",
) -> None:
    """Record how the run ended (its decision, what blocked it, its reports) on the run's ledger row."""
    from charter_guardrails.ledger.store import finish_check_run, get_or_create_check_run, ledger_session

    dag_id, run_id = run_ids(context)
    with ledger_session() as session:
        run = get_or_create_check_run(session, use_case=policy.id, dag_id=dag_id, run_id=run_id)
        finish_check_run(session, run, decision=decision, blocked_by=blocked_by, reports=reports, actor=actor)


def run_results(policy: UseCasePolicy, context: Mapping[str, Any]) -> list[Any]:
    """Every CheckResult the run recorded, from the ledger (not from XCom: a crashed task left none)."""
    from charter_guardrails.ledger.store import get_or_create_check_run, ledger_session, results_for_run

    dag_id, run_id = run_ids(context)
    with ledger_session() as session:
        run = get_or_create_check_run(session, use_case=policy.id, dag_id=dag_id, run_id=run_id)
        return results_for_run(session, run)


def gate(policy: UseCasePolicy, context: Mapping[str, Any], expected: Iterable[str]) -> dict[str, Any]:
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


def _refuse(policy: UseCasePolicy, context: Mapping[str, Any], *, what: str, actor: str, reason: str) -> NoReturn:
    """Audit the refusal, close the run as rejected and fail the task with ``reason``."""
    from airflow.sdk.exceptions import AirflowFailException
    from charter_guardrails.decision.review_records import record_refusal
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        record_refusal(session, use_case=policy.id, run_id=run_ids(context)[1], actor=actor, what=what, reason=reason)
    finish_run(policy, context, decision="rejected", blocked_by=[], actor=actor)
    raise AirflowFailException(f"not published: {reason}")


def _ledger_records(policy: UseCasePolicy, context: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The human answer and the candidate the ledger holds for this run; a missing one fails the task."""
    from airflow.sdk.exceptions import AirflowFailException
    from charter_guardrails.decision.review_records import answer_of_run, candidate_of_run
    from charter_guardrails.ledger.store import ledger_session

    _, run_id = run_ids(context)
    with ledger_session() as session:
        answer = answer_of_run(session, policy.id, run_id)
        candidate = candidate_of_run(session, policy.id, run_id)
    if answer is None:
        raise AirflowFailException(
            f"no answer of the approval form is recorded in the ledger for run {run_id}: "
            "clear the human_review task to ask the approvers again"
        )
    if candidate is None or not candidate.get("artifact_path") or not candidate.get("artifact_sha256"):
        raise AirflowFailException(
            f"no trained candidate is recorded in the ledger for run {run_id}: clear train_candidate to train it again"
        )
    return answer, candidate


def _verified_candidate(
    policy: UseCasePolicy, context: Mapping[str, Any], candidate: dict[str, Any], actor: str
) -> None:
    """Refuse a candidate file whose SHA-256 is not the one the training task recorded."""
    import hmac

    from charter_guardrails.refresh.artifacts import file_sha256

    path = Path(candidate["artifact_path"])
    actual = file_sha256(path) if path.is_file() else None
    if actual is None or not hmac.compare_digest(actual, str(candidate["artifact_sha256"])):
        _refuse(
            policy,
            context,
            what="candidate",
            actor=actor,
            reason=f"the candidate model {path.name} is missing or changed since training (SHA-256 "
            f"{(actual or 'none')[:12]}…, recorded {str(candidate['artifact_sha256'])[:12]}…): train it again",
        )


def publish(policy: UseCasePolicy, context: Mapping[str, Any], *, expected: Iterable[str]) -> dict[str, Any]:
    """Apply the human answer; on approval or justified override, register the version and its model card.

    Trusts only the ledger: the gate decision is recomputed from the run's recorded verdicts, the answer
    is the one the review task recorded from Airflow's HITL record, and the candidate is the file whose
    SHA-256 the training task recorded. The responder is checked against the policy again.
    """
    from airflow.sdk.exceptions import AirflowSkipException
    from charter_guardrails.decision.gate import decide, review
    from charter_guardrails.decision.review_records import responder_refusal

    from charter_airflow.review import triggering_user

    decision = decide(run_results(policy, context), expected)
    answer, candidate = _ledger_records(policy, context)
    actor = answer.responder or "charter-guardrails"
    refusal = responder_refusal(policy, answer, triggering_user(context))
    if refusal:
        _refuse(policy, context, what="approval", actor=actor, reason=refusal)
    outcome = review(decision, answer.choice, answer.justification)
    if answer.timed_out:
        outcome = outcome.model_copy(update={"publish": False, "decision": "rejected", "reason": "no answer"})
    if not outcome.publish:
        _record_rejection(
            policy,
            context,
            actor=actor,
            reason=outcome.reason,
            blocked_by=decision.blocked_by,
            timed_out=answer.timed_out,
        )
        raise AirflowSkipException(f"not published: {outcome.reason}")
    _verified_candidate(policy, context, candidate, actor)
    justification = answer.justification
    overridden = outcome.decision == "overridden"
    number = _register_version(
        policy,
        context,
        decision=decision,
        outcome=outcome.decision,
        actor=actor,
        justification=justification,
        candidate=candidate,
    )
    card = _publish_artifacts(
        policy,
        context,
        number=number,
        approver=actor,
        decision=outcome.decision,
        overrides=[{"checks": decision.overridable, "justification": justification, "actor": actor}]
        if overridden
        else [],
        candidate=candidate,
    )
    finish_run(policy, context, decision=outcome.decision, blocked_by=[], reports={"model_card": card}, actor=actor)
    log.info("%s v%s %s by %s", policy.id, number, outcome.decision, actor)
    return {"version": number, "decision": outcome.decision, "approver": actor, "model_card": card}


def _record_rejection(
    policy: UseCasePolicy,
    context: Mapping[str, Any],
    *,
    actor: str,
    reason: str,
    blocked_by: list[str],
    timed_out: bool = False,
) -> None:
    """The rejected approval row (``rejected: no answer`` when the form timed out, the approvers told) and the
    run's end."""
    from charter_guardrails.decision.model_registry import record_approval
    from charter_guardrails.decision.review_records import request_of_run
    from charter_guardrails.incidents.approval_notice import TIMED_OUT, queue_approval_notice
    from charter_guardrails.ledger.store import ledger_session

    _, run_id = run_ids(context)
    with ledger_session() as session:
        record_approval(
            session, use_case=policy.id, run_id=run_id, decision="rejected", actor=actor, justification=reason
        )
        if timed_out:
            request = request_of_run(session, policy.id, run_id) or {}
            queue_approval_notice(
                session,
                policy,
                kind=TIMED_OUT,
                run_id=run_id,
                usernames=list(request.get("assigned") or []),
                payload={"link": request.get("link"), "deadline": request.get("deadline")},
            )
    finish_run(policy, context, decision="rejected", blocked_by=blocked_by, actor=actor)


def _register_version(
    policy: UseCasePolicy,
    context: Mapping[str, Any],
    *,
    decision: GateDecision,
    outcome: str,
    actor: str,
    justification: str | None,
    candidate: dict[str, Any],
) -> int:
    """Record the approval (who, why, what was overridden) and register the new production version."""
    from charter_guardrails.decision.model_registry import publish_version, record_approval
    from charter_guardrails.ledger.store import ledger_session

    _, run_id = run_ids(context)
    overridden = outcome == "overridden"
    with ledger_session() as session:
        record_approval(
            session,
            use_case=policy.id,
            run_id=run_id,
            decision=outcome,
            actor=actor,
            justification=justification if overridden else None,
            overridden_checks=decision.overridable if overridden else [],
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
        return int(version.version)


def _publish_artifacts(
    policy: UseCasePolicy,
    context: Mapping[str, Any],
    *,
    number: int,
    approver: str,
    decision: str,
    overrides: list[dict[str, Any]],
    candidate: dict[str, Any],
) -> str:
    """Copy the model artifact next to its model card, and link both to the production version."""
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.decision.model_registry import production_version, set_model_files
    from charter_guardrails.ledger.store import ledger_session

    models_dir = get_settings().models_dir / policy.id
    models_dir.mkdir(parents=True, exist_ok=True)
    artifact = models_dir / f"v{number}.joblib"
    if candidate.get("artifact_path"):
        from charter_guardrails.core.errors import ArtifactIntegrityError
        from charter_guardrails.refresh.artifacts import file_sha256

        shutil.copyfile(candidate["artifact_path"], artifact)
        if (actual := file_sha256(artifact)) != candidate["artifact_sha256"]:  # changed between check and copy
            artifact.unlink()
            raise ArtifactIntegrityError(artifact, candidate["artifact_sha256"], actual)
    card = write_card(
        policy,
        context,
        version=number,
        approver=approver,
        decision=decision,
        overrides=overrides,
        candidate=candidate,
        out_dir=models_dir / f"v{number}",
    )
    with ledger_session() as session:
        current = production_version(session, policy.id)
        if current is not None and current.version == number:
            # stored relative to the models folder: a state restored elsewhere keeps its links
            set_model_files(session, current, card_path=card, artifact_path=artifact, actor=approver)
    return card


def write_card(
    policy: UseCasePolicy,
    context: Mapping[str, Any],
    *,
    version: int,
    approver: str,
    decision: str,
    overrides: list[dict[str, Any]],
    candidate: dict[str, Any],
    out_dir: Path,
) -> str:
    """The model card (and AI label) of the published version; its HTML path."""
    from charter_guardrails.core.catalogue import CheckName
    from charter_guardrails.reporting.model_card import ModelCardFacts, write_model_card

    _, run_id = run_ids(context)
    results = run_results(policy, context)
    fairness: dict[str, Any] = next((r.evidence for r in results if r.check == CheckName.FAIRNESS), {})
    paths = write_model_card(
        policy,
        ModelCardFacts(
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
        ),
        out_dir=out_dir,
    )
    return str(paths.html)
