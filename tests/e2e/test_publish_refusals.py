"""The publish step's own checks, on the ledger: what Airflow's form already refuses is refused again.

The HITL form of a refresh is assigned to the policy's approvers, so the real processes never hand publish
an answer from anyone else (``test_refresh_four_eyes.py``). Here the ledger holds such an answer, or a
candidate file changed since training, and ``charter_airflow.publish.publish`` runs on it: the task fails
with a message that says what to do, the refusal is audited, and nothing is published.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

DAG = "citizen_requests_model_refresh"


def _context(run_id: str, triggered_by: str | None) -> dict[str, Any]:
    return {"dag_run": SimpleNamespace(dag_id=DAG, run_id=run_id, triggering_user_name=triggered_by)}


def _records(run_id: str, model: Path, who: str | None, choice: str = "Approve") -> None:
    from charter_guardrails.decision.review_records import ReviewAnswer, record_answer, record_candidate
    from charter_guardrails.ledger.store import ledger_session

    candidate = {"artifact_path": str(model), "artifact_sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    with ledger_session() as s:
        record_candidate(s, use_case="citizen_requests", run_id=run_id, candidate=candidate)
        record_answer(
            s,
            use_case="citizen_requests",
            run_id=run_id,
            answer=ReviewAnswer(responder_id=who, responder_name=who, choice=choice, justification="x" * 30),
        )


def _audit(action: str, run_id: str) -> list[dict[str, Any]]:
    from charter_guardrails.ledger.models import AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == action, AuditEvent.run_id == run_id))
        return [{"actor": e.actor, **e.payload} for e in rows]


@pytest.fixture
def all_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate as it decides when every guardrail of the run passed."""
    from charter_guardrails.decision import gate

    monkeypatch.setattr(gate, "decide", lambda results, expected: gate.GateDecision(outcome="needs_approval"))


@pytest.mark.parametrize(
    ("who", "choice", "triggered_by", "reason"),
    [
        ("ops.user", "Approve", "claire.martin", "is not an approver of citizen_requests"),
        ("claire.martin", "Approve", "claire.martin", "triggered this run and cannot approve it"),
        ("claire.martin", "Override", "karim.haddad", "may approve but not override"),
    ],
    ids=["unlisted", "four_eyes", "not_override_approver"],
)
def test_publish_refuses_an_answer_the_policy_does_not_allow(
    ledger_url: str, tmp_path: Path, all_passed: None, who: str, choice: str, triggered_by: str, reason: str
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from charter_airflow import publish
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.decision.gate import REFRESH_CHECKS

    from tests.e2e.support import ledger_state

    model = tmp_path / "model.joblib"
    model.write_bytes(b"trained model")
    _records("r1", model, who, choice)
    with pytest.raises(AirflowFailException, match=reason):
        publish.publish(load_policy("citizen_requests"), _context("r1", triggered_by), expected=REFRESH_CHECKS)
    assert [e["actor"] for e in _audit("approval.refused", "r1")] == [who]
    state = ledger_state("citizen_requests")
    assert state["versions"] == []
    assert state["runs"] == [(DAG, "rejected", [])]


def test_publish_refuses_a_candidate_changed_since_training(ledger_url: str, tmp_path: Path, all_passed: None) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from charter_airflow import publish
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.decision.gate import REFRESH_CHECKS

    from tests.e2e.support import ledger_state

    model = tmp_path / "model.joblib"
    model.write_bytes(b"trained model")
    _records("r1", model, "karim.haddad")
    model.write_bytes(b"another model")
    with pytest.raises(AirflowFailException, match="changed since training"):
        publish.publish(load_policy("citizen_requests"), _context("r1", "claire.martin"), expected=REFRESH_CHECKS)
    assert len(_audit("candidate.refused", "r1")) == 1
    assert ledger_state("citizen_requests")["versions"] == []
