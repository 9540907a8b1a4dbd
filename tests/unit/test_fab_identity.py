"""A person is their user name under FAB too: the HITL check, the recorded answer and the four-eyes check.

Under FAB a user's id is its numeric ``ab_user.id`` and its name its username; under the simple auth manager both
are the name. The review form is assigned to names, so the project's auth manager compares the responder's name,
and the ledger's answer, its actor and the four-eyes check use the name, never the numeric id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager
from airflow.providers.fab.auth_manager.models import User
from charter_airflow.auth import CharterFabAuthManager
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.decision.review_records import (
    APPROVAL_ANSWERED,
    ReviewAnswer,
    answer_of_run,
    record_answer,
    responder_refusal,
)
from charter_guardrails.ledger.models import AuditEvent
from charter_guardrails.ledger.store import ledger_session
from sqlalchemy import select

from tests.conftest import ROOT

POLICY_FILE = ROOT / "include" / "policies" / "citizen_requests.yaml"
#: karim.haddad and claire.martin are the approvers of citizen_requests; their FAB ids are 7 and 3.
KARIM = {"id": "7", "name": "karim.haddad"}
CLAIRE = {"id": "3", "name": "claire.martin"}


def _fab_user(user: dict[str, str]) -> User:
    return User(id=int(user["id"]), username=user["name"], email=f"{user['name']}@example.org")


def _answer(user: dict[str, str] | None, choice: str = "Approve") -> ReviewAnswer:
    return ReviewAnswer(
        responder_id=user["id"] if user else None,
        responder_name=user["name"] if user else None,
        choice=choice,
        justification="Revue faite en comité, écarts acceptés." if choice == "Override" else None,
    )


def test_fab_s_own_check_refuses_an_approver_assigned_by_name() -> None:
    """Why the project has its auth manager: FAB's id of karim.haddad is 7, not his name."""
    karim = _fab_user(KARIM)
    assert (karim.get_id(), karim.get_name()) == ("7", "karim.haddad")
    assert not FabAuthManager().is_authorized_hitl_task(assigned_users={"karim.haddad"}, user=karim)


@pytest.mark.parametrize(
    ("assigned", "user", "allowed"),
    [
        ({"karim.haddad"}, KARIM, True),
        ({"claire.martin", "karim.haddad"}, CLAIRE, True),
        ({"karim.haddad"}, CLAIRE, False),  # the triggering user, left out of the form (four eyes)
        ({"7"}, KARIM, False),  # an id is not a name: ids and names never mix in one check
        ({"3"}, {"id": "3", "name": "ops.user"}, False),
    ],
)
def test_the_project_auth_manager_checks_the_responder_by_name(
    assigned: set[str], user: dict[str, str], allowed: bool
) -> None:
    manager = CharterFabAuthManager()
    assert manager.is_authorized_hitl_task(assigned_users=assigned, user=_fab_user(user)) is allowed


def test_the_responder_is_the_name_and_the_id_only_without_one() -> None:
    assert _answer(KARIM).responder == "karim.haddad"
    assert ReviewAnswer(responder_id="karim.haddad", responder_name=None, choice="Approve").responder == "karim.haddad"
    timed_out = _answer(None, "Reject")
    assert (timed_out.responder, timed_out.timed_out) == (None, True)
    assert not _answer(KARIM).timed_out


@pytest.mark.parametrize(
    ("answer", "triggered_by", "refused"),
    [
        (_answer(KARIM), "claire.martin", None),  # a listed approver, although FAB's id is 7
        (_answer(KARIM, "Override"), "claire.martin", None),
        (_answer(KARIM), "karim.haddad", "four eyes"),  # the triggering user, by name, whatever the id
        (_answer(CLAIRE), "claire.martin", "four eyes"),
        (_answer(CLAIRE, "Override"), "karim.haddad", "may approve but not override"),
        (_answer({"id": "karim.haddad", "name": "ops.user"}), "claire.martin", "not an approver"),
    ],
)
def test_four_eyes_and_the_approvers_compare_names(
    answer: ReviewAnswer, triggered_by: str, refused: str | None
) -> None:
    reason = responder_refusal(UseCasePolicy.from_file(POLICY_FILE), answer, triggered_by)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert refused in reason
        assert "'7'" not in reason  # the person is named, not their numeric id
        assert "'3'" not in reason


def _recorded(run_id: str) -> tuple[ReviewAnswer | None, list[str]]:
    with ledger_session() as session:
        answer = answer_of_run(session, "citizen_requests", run_id)
        actors = list(
            session.scalars(
                select(AuditEvent.actor).where(AuditEvent.action == APPROVAL_ANSWERED, AuditEvent.run_id == run_id)
            )
        )
    return answer, actors


def test_the_ledger_names_the_fab_responder(ledger_url: str) -> None:
    with ledger_session() as session:
        record_answer(session, use_case="citizen_requests", run_id="r1", answer=_answer(KARIM))
    answer, actors = _recorded("r1")
    assert answer is not None
    assert (answer.responder_id, answer.responder) == ("7", "karim.haddad")
    assert actors == ["karim.haddad"]


def _event(user: dict[str, str] | None, choice: str = "Approve") -> dict[str, Any]:
    """Airflow's HITL record of an answer, as the api-server hands it to the resumed task under FAB."""
    return {
        "chosen_options": [choice],
        "params_input": {"justification": ""},
        "responded_at": datetime(2026, 12, 5, 9, 30, tzinfo=UTC),
        "responded_by_user": user,
    }


def test_the_review_task_records_the_fab_answer_by_name(ledger_url: str) -> None:
    from charter_airflow.review import PolicyReviewOperator

    operator = PolicyReviewOperator(task_id="human_review", policy_file=str(POLICY_FILE), subject="s")
    context = {"dag_run": SimpleNamespace(dag_id="citizen_requests_model_refresh", run_id="manual__fab")}
    result = operator.execute_complete(context, _event(KARIM))
    assert result["chosen_options"] == ["Approve"]
    answer, actors = _recorded("manual__fab")
    assert answer is not None
    assert (answer.responder_id, answer.responder_name, answer.choice) == ("7", "karim.haddad", "Approve")
    assert actors == ["karim.haddad"]
    policy = UseCasePolicy.from_file(POLICY_FILE)
    assert responder_refusal(policy, answer, "claire.martin") is None
    refusal = responder_refusal(policy, answer, "karim.haddad")
    assert refusal is not None
    assert "four eyes" in refusal
