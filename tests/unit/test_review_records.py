"""The approval of a refresh in the policy and the ledger: approvers' usernames, override approvers, the
response timeout, the four-eyes check, the records publish trusts and the approvers' notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from charter_guardrails.core.errors import PolicyError
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.decision.review_records import (
    ReviewAnswer,
    answer_of_run,
    candidate_of_run,
    record_answer,
    record_candidate,
    record_request,
    request_of_run,
    responder_refusal,
)
from charter_guardrails.incidents import approval_notice
from charter_guardrails.incidents.messages import Alert, email_message, webhook_body
from charter_guardrails.incidents.relay import relay
from charter_guardrails.ledger.models import AlertOutbox
from charter_guardrails.ledger.store import ledger_session
from sqlalchemy import select

from tests.conftest import ROOT

POLICY_FILE = ROOT / "include" / "policies" / "citizen_requests.yaml"


def _policy(**approval: Any) -> UseCasePolicy:
    raw = UseCasePolicy.from_file(POLICY_FILE).model_dump(mode="json")
    raw["approval"] = {**raw["approval"], **approval}
    return UseCasePolicy.model_validate(raw)


def _answer(who: str | None, choice: str = "Approve", justification: str | None = None) -> ReviewAnswer:
    return ReviewAnswer(responder_id=who, responder_name=who, choice=choice, justification=justification)


def test_the_policy_maps_approvers_to_airflow_users() -> None:
    policy = UseCasePolicy.from_file(POLICY_FILE)
    assert policy.approver_usernames == ["claire.martin", "karim.haddad"]
    assert policy.approval.override_approvers == ["karim.haddad"]
    assert policy.approval.response_timeout == timedelta(days=7)
    assert _policy(response_timeout="PT5S").approval.response_timeout == timedelta(seconds=5)


def test_an_override_approver_must_be_an_approver(tmp_path) -> None:
    text = POLICY_FILE.read_text(encoding="utf-8").replace(
        "override_approvers: [karim.haddad]", "override_approvers: [eve]"
    )
    bad = tmp_path / "citizen_requests.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=r"override_approvers \['eve'\] are not the username of an approver"):
        UseCasePolicy.from_file(bad)


@pytest.mark.parametrize("timeout", ["PT0S", -5])
def test_the_response_timeout_is_positive(timeout: Any) -> None:
    with pytest.raises(ValueError, match="response_timeout must be positive"):
        _policy(response_timeout=timeout)


@pytest.mark.parametrize(
    ("answer", "triggered_by", "refused"),
    [
        (_answer("karim.haddad"), "claire.martin", None),
        (_answer("karim.haddad", "Override", "x" * 25), "claire.martin", None),
        (_answer("claire.martin"), "claire.martin", "four eyes"),
        (_answer("ops.user"), "claire.martin", "not an approver"),
        (_answer("claire.martin", "Override", "x" * 25), "karim.haddad", "may approve but not override"),
        (_answer("claire.martin", "Reject"), None, None),
        (_answer(None, "Reject"), "claire.martin", None),  # no answer: a rejection, refused by nobody
    ],
)
def test_responder_refusal(answer: ReviewAnswer, triggered_by: str | None, refused: str | None) -> None:
    reason = responder_refusal(UseCasePolicy.from_file(POLICY_FILE), answer, triggered_by)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert refused in reason


def test_publish_reads_the_last_records_of_its_run(ledger_url: str) -> None:
    candidate = {"artifact_path": "/m/a.joblib", "artifact_sha256": "a" * 64, "metrics": {"f1_macro": 0.8}}
    with ledger_session() as s:
        assert candidate_of_run(s, "citizen_requests", "r1") is None
        assert answer_of_run(s, "citizen_requests", "r1") is None
        record_candidate(
            s, use_case="citizen_requests", run_id="r1", candidate={**candidate, "artifact_sha256": "0" * 64}
        )
        record_candidate(s, use_case="citizen_requests", run_id="r1", candidate=candidate)
        record_candidate(
            s, use_case="citizen_requests", run_id="r2", candidate={**candidate, "artifact_sha256": "b" * 64}
        )
        record_request(
            s,
            use_case="citizen_requests",
            run_id="r1",
            assigned=["karim.haddad"],
            triggered_by="claire.martin",
            deadline=datetime(2026, 12, 10, tzinfo=UTC),
            link="http://airflow/dags/d/runs/r1/tasks/human_review/required_actions",
        )
        record_answer(s, use_case="citizen_requests", run_id="r1", answer=_answer("karim.haddad", "Reject"))
    with ledger_session() as s:
        recorded = candidate_of_run(s, "citizen_requests", "r1")
        assert recorded is not None
        assert recorded["artifact_sha256"] == "a" * 64
        assert recorded["metrics"] == {"f1_macro": 0.8}
        assert answer_of_run(s, "citizen_requests", "r1") == _answer("karim.haddad", "Reject")
        assert answer_of_run(s, "citizen_requests", "r2") is None
        request = request_of_run(s, "citizen_requests", "r1")
        assert request is not None
        assert request["assigned"] == ["karim.haddad"]


class _Collect:
    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.sent.append(alert)


def test_the_approvers_notice_is_queued_once_and_relayed(ledger_url: str) -> None:
    policy = UseCasePolicy.from_file(POLICY_FILE)
    payload = {
        "link": "http://airflow.example/dags/d/runs/r1/tasks/human_review/required_actions",
        "deadline": "2026-12-10T10:00:00+00:00",
        "brief": "| quality | conforme |",
    }
    with ledger_session() as s:
        rows = approval_notice.queue_approval_notice(
            s, policy, kind=approval_notice.REQUESTED, run_id="r1", usernames=["karim.haddad"], payload=payload
        )
        assert [(r.channel, r.recipient, r.incident_id) for r in rows] == [
            ("email", "karim.haddad@ampmetropole.example", None)
        ]
    with ledger_session() as s:  # a retried task queues nothing twice
        assert not approval_notice.queue_approval_notice(
            s, policy, kind=approval_notice.REQUESTED, run_id="r1", usernames=["karim.haddad"], payload=payload
        )
    collect = _Collect()
    assert relay({"email": collect}).delivered == 1
    assert relay({"email": collect}).delivered == 0
    [alert] = collect.sent
    message = email_message(alert, sender="charte@example")
    assert message["Subject"].startswith("[Charte IA – Validation] Mise à jour du modèle citizen_requests")
    assert message["X-Idempotency-Key"] == alert.idempotency_key
    assert "X-Charter-Incident" not in message
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert payload["link"] in text
    assert "| quality | conforme |" in text
    assert webhook_body(alert)["event"] == "approval.requested"
    with ledger_session() as s:
        assert [o.status for o in s.scalars(select(AlertOutbox))] == ["delivered"]


def test_the_timed_out_notice_says_the_refresh_is_rejected(ledger_url: str) -> None:
    policy = UseCasePolicy.from_file(POLICY_FILE)
    with ledger_session() as s:
        approval_notice.queue_approval_notice(
            s, policy, kind=approval_notice.TIMED_OUT, run_id="r1", usernames=["karim.haddad"], payload={}
        )
    collect = _Collect()
    relay({"email": collect})
    [alert] = collect.sent
    assert "rejetée : aucune réponse" in approval_notice.subject(alert)
    assert "rejected: no answer" in approval_notice.text_body(alert)


def test_an_unknown_notice_kind_is_refused(ledger_url: str) -> None:
    with ledger_session() as s, pytest.raises(ValueError, match="unknown approval notice"):
        approval_notice.queue_approval_notice(
            s, UseCasePolicy.from_file(POLICY_FILE), kind="other", run_id="r1", usernames=[], payload={}
        )
