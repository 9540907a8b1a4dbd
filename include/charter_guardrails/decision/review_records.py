"""What the publish step of a refresh trusts: the ledger's records of the candidate and of the human answer.

A refresh's tasks pass values to each other through Airflow XCom, which any user allowed to edit task
instances can rewrite through the REST API while the approval form waits. So what publishing depends on
is written to the ledger (append-only, hash-chained audit events) by the task that knows it:

* ``candidate.trained``: the training task records the candidate's artifact path, its SHA-256 and its
  metrics; publish loads that file only if its hash is still the recorded one;
* ``approval.requested``: the review task records who the form was assigned to and until when;
* ``approval.answered``: the review task records the answer from Airflow's HITL record (who answered,
  the option chosen, the justification), as Airflow hands it to the resumed task rather than from XCom.

:func:`responder_refusal` checks an answer against the policy (four eyes, listed approvers, override
approvers); publish calls it again on the recorded answer, whatever the form allowed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.decision.gate import HumanChoice
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.models import AuditEvent

ACTOR = "charter-guardrails"
CANDIDATE_TRAINED = "candidate.trained"
APPROVAL_REQUESTED = "approval.requested"
APPROVAL_ANSWERED = "approval.answered"
APPROVAL_REFUSED = "approval.refused"
CANDIDATE_REFUSED = "candidate.refused"
#: The candidate's fields that publish uses; the rest of the training output stays in the task's XCom.
_CANDIDATE_FIELDS = ("artifact_path", "artifact_sha256", "metrics", "energy", "data_period", "train_rows", "test_rows")


class ReviewAnswer(BaseModel):
    """One answer to the approval form, as Airflow's HITL record holds it."""

    model_config = ConfigDict(frozen=True)

    #: The Airflow user id and name of the responder; ``None`` when the form timed out unanswered.
    responder_id: str | None
    responder_name: str | None
    choice: str
    justification: str | None = None
    responded_at: datetime | None = None

    @property
    def responder(self) -> str | None:
        """Who answered, by user name: the one identity of a person in both auth managers.

        The policy names its approvers by user name and the run's triggering user is a name
        (``triggering_user_name``). Under the simple auth manager a user's id is its name; under FAB the id
        is the numeric ``ab_user.id`` and the name its username, unique in both. The id stands in only for a
        record that holds no name.
        """
        return self.responder_name or self.responder_id

    @property
    def timed_out(self) -> bool:
        return self.responder is None


def _latest(session: Session, action: str, use_case: str, run_id: str) -> AuditEvent | None:
    return session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == action, AuditEvent.use_case == use_case, AuditEvent.run_id == run_id)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()


def record_candidate(session: Session, *, use_case: str, run_id: str, candidate: dict[str, Any]) -> None:
    """Record the trained candidate (artifact path, SHA-256, metrics) of a run; a retried task records it again."""
    payload = {key: candidate.get(key) for key in _CANDIDATE_FIELDS}
    append_event(session, actor=ACTOR, action=CANDIDATE_TRAINED, use_case=use_case, run_id=run_id, payload=payload)


def candidate_of_run(session: Session, use_case: str, run_id: str) -> dict[str, Any] | None:
    """The candidate the training task of ``run_id`` recorded last, or ``None``."""
    event = _latest(session, CANDIDATE_TRAINED, use_case, run_id)
    return {key: event.payload.get(key) for key in _CANDIDATE_FIELDS} if event is not None else None


def record_request(
    session: Session,
    *,
    use_case: str,
    run_id: str,
    assigned: list[str],
    triggered_by: str | None,
    deadline: datetime,
    link: str,
) -> None:
    """Record that the approval form opened: to whom it is assigned, who triggered the run, until when it
    waits and where the form is."""
    append_event(
        session,
        actor=ACTOR,
        action=APPROVAL_REQUESTED,
        use_case=use_case,
        run_id=run_id,
        payload={"assigned": assigned, "triggered_by": triggered_by, "deadline": deadline.isoformat(), "link": link},
    )


def request_of_run(session: Session, use_case: str, run_id: str) -> dict[str, Any] | None:
    """The last ``approval.requested`` record of ``run_id`` (assigned, triggered_by, deadline, link), or ``None``."""
    event = _latest(session, APPROVAL_REQUESTED, use_case, run_id)
    return dict(event.payload) if event is not None else None


def record_answer(session: Session, *, use_case: str, run_id: str, answer: ReviewAnswer) -> None:
    """Record the answer of the approval form as Airflow's HITL record holds it."""
    append_event(
        session,
        actor=answer.responder or ACTOR,
        action=APPROVAL_ANSWERED,
        use_case=use_case,
        run_id=run_id,
        payload=answer.model_dump(mode="json"),
    )


def answer_of_run(session: Session, use_case: str, run_id: str) -> ReviewAnswer | None:
    """The answer recorded last for ``run_id``, or ``None`` when the form was never answered."""
    event = _latest(session, APPROVAL_ANSWERED, use_case, run_id)
    return ReviewAnswer.model_validate(event.payload) if event is not None else None


def responder_refusal(policy: UseCasePolicy, answer: ReviewAnswer, triggered_by: str | None) -> str | None:
    """Why the policy does not accept this responder's answer, or ``None`` when it does.

    Four eyes: the user who triggered the run cannot answer its approval. Only an approver listed in
    the policy (by ``username``) can answer, and only an override approver can choose ``Override``. The
    responder and ``triggered_by`` are compared by user name (:attr:`ReviewAnswer.responder`), never a
    numeric id with a name.
    """
    who = answer.responder
    if who is None:
        return None  # no answer: a rejection, whoever was asked
    if who not in policy.approver_usernames:
        return (
            f"{who!r} is not an approver of {policy.id}: only {policy.approver_usernames} may answer; "
            "add their username to the policy's approvers to let them decide"
        )
    if triggered_by is not None and who == triggered_by:
        return (
            f"{who!r} triggered this run and cannot approve it (four eyes): another approver of the policy must answer"
        )
    if answer.choice == HumanChoice.OVERRIDE and who not in policy.approval.override_approvers:
        return (
            f"{who!r} may approve but not override: only {policy.approval.override_approvers} may publish "
            "despite a failed guardrail (approval.override_approvers in the policy)"
        )
    return None


def record_refusal(session: Session, *, use_case: str, run_id: str, actor: str, what: str, reason: str) -> None:
    """Record that publish refused an answer (``what="approval"``) or a candidate (``what="candidate"``)."""
    action = APPROVAL_REFUSED if what == "approval" else CANDIDATE_REFUSED
    append_event(session, actor=actor, action=action, use_case=use_case, run_id=run_id, payload={"reason": reason})


__all__ = [
    "APPROVAL_ANSWERED",
    "APPROVAL_REFUSED",
    "APPROVAL_REQUESTED",
    "CANDIDATE_REFUSED",
    "CANDIDATE_TRAINED",
    "ReviewAnswer",
    "answer_of_run",
    "candidate_of_run",
    "record_answer",
    "record_candidate",
    "record_refusal",
    "record_request",
    "request_of_run",
    "responder_refusal",
]
