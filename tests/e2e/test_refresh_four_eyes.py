"""Four eyes and a publish step that trusts only the ledger, on real Airflow processes.

The approval form of a refresh is assigned to the policy's approvers except the user who triggered
the run; Airflow refuses anyone else's answer. Publish recomputes the gate from the ledger's verdicts,
loads the candidate whose SHA-256 the training task recorded, and takes the answer from Airflow's HITL
record: rewriting the ``gate`` and ``train_candidate`` XComs while the form waits changes nothing.
A form left unanswered past the policy's ``approval.response_timeout`` rejects the refresh. The
approvers are told through the alert outbox, delivered by the relay DAG to a local SMTP server.
"""

from __future__ import annotations

import email
import hashlib
import shutil
from collections.abc import Iterator
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import ledger_state, register, smtp_catcher

DAG = "citizen_requests_model_refresh"
RELAY = "incident_alert_relay"
USERS = {
    "claire.martin": ("admin", "pw-claire"),
    "karim.haddad": ("admin", "pw-karim"),
    # an operator: may edit task instances and XComs, is not an approver of the policy
    "ops.user": ("op", "pw-ops"),
}
KARIM = "karim.haddad@ampmetropole.example"
CLAIRE = "claire.martin@ampmetropole.example"


@pytest.fixture
def policies_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the policies that the test may edit; Airflow's processes read it."""
    from tests.conftest import ROOT

    target = tmp_path / "policies"
    shutil.copytree(ROOT / "include" / "policies", target)
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(target))
    return target


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """A local SMTP server behind Airflow's ``smtp_default`` connection; the messages it received."""
    with smtp_catcher(monkeypatch) as received:
        yield received


@pytest.fixture
def airflow(e2e_home: Path, airflow_db: Path, policies_dir: Path, smtp: list[bytes]) -> Iterator[Any]:
    from charter_demo.local_airflow import LocalAirflow

    # The scheduler looks for timed-out forms every 2 s instead of 15 s.
    extra = {"AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2"}
    with LocalAirflow(home=airflow_db, users=USERS, extra_env=extra) as running:
        running.client("claire.martin").wait_for_dag(DAG)
        yield running


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _audit(action: str, run_id: str) -> list[dict[str, Any]]:
    from charter_guardrails.ledger.models import AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.run_id == run_id).order_by(AuditEvent.seq)
        )
        return [{"actor": e.actor, **e.payload} for e in events]


def _outbox(kind: str) -> list[tuple[str, str, str, str | None]]:
    from charter_guardrails.ledger.models import AlertOutbox
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        rows = session.scalars(select(AlertOutbox).order_by(AlertOutbox.id))
        return [
            (r.recipient, r.idempotency_key, r.status, r.payload.get("run_id"))
            for r in rows
            if r.payload.get("kind") == kind
        ]


def _forged_gate(real: dict[str, Any]) -> dict[str, Any]:
    """The gate's XCom, rewritten to say that quality failed (an ``Approve`` would then be refused)."""
    decision = {
        **real["decision"],
        "outcome": "needs_override",
        "failed": ["quality"],
        "overridable": ["quality"],
        "reasons": {"quality": "forged"},
    }
    return {**real, "decision": decision}


def test_four_eyes_and_publish_from_the_ledger_only(airflow, e2e_home: Path, smtp: list[bytes]) -> None:
    from charter_demo.local_airflow import AirflowRestError

    claire, karim, ops = (airflow.client(u) for u in ("claire.martin", "karim.haddad", "ops.user"))
    register("citizen_requests", "training", "citizen_requests/training.csv")
    run_id = claire.trigger(DAG)
    detail = karim.wait_for_hitl(DAG, run_id, "human_review")
    assert [u["id"] for u in detail["assigned_users"]] == ["karim.haddad"]
    assert "Tous les garde-fous sont conformes" in detail["body"]  # rendered from the ledger's verdicts

    # Four eyes: the user who triggered the run cannot answer; nor can a user the policy does not list.
    with pytest.raises(AirflowRestError, match="HTTP 403"):
        claire.answer_hitl(DAG, run_id, "human_review", "Approve")
    with pytest.raises(AirflowRestError, match="HTTP 403"):
        ops.answer_hitl(DAG, run_id, "human_review", "Approve")

    # While the form waits, an operator rewrites the gate's decision and swaps the candidate model.
    real_candidate = ops.get_xcom(DAG, run_id, "train_candidate")
    forged_model = e2e_home / "forged.joblib"
    forged_model.write_bytes(b"not the trained model")
    forged_candidate = {**real_candidate, "artifact_path": str(forged_model), "artifact_sha256": _sha256(forged_model)}
    ops.set_xcom(DAG, run_id, "train_candidate", forged_candidate)
    ops.set_xcom(DAG, run_id, "gate", _forged_gate(ops.get_xcom(DAG, run_id, "gate")))
    assert ops.get_xcom(DAG, run_id, "train_candidate")["artifact_sha256"] == _sha256(forged_model)
    assert ops.get_xcom(DAG, run_id, "gate")["decision"]["outcome"] == "needs_override"

    # A listed approver who did not trigger the run approves: the ledger's decision (every guardrail
    # passed) and the ledger's candidate are published, not the forged ones.
    karim.answer_hitl(DAG, run_id, "human_review", "Approve")
    assert karim.wait_for_run(DAG, run_id) == "success"
    states = {t["task_id"]: t["state"] for t in karim.task_instances(DAG, run_id)}
    assert states["publish"] == "success"
    state = ledger_state("citizen_requests")
    assert state["versions"] == [(1, "production", "karim.haddad")]
    assert ("published", "karim.haddad") in state["approvals"]
    [trained] = _audit("candidate.trained", run_id)
    assert trained["artifact_sha256"] == real_candidate["artifact_sha256"] != forged_candidate["artifact_sha256"]
    published = e2e_home / "models" / "citizen_requests" / "v1.joblib"
    assert _sha256(published) == trained["artifact_sha256"]
    [answer] = _audit("approval.answered", run_id)
    assert (answer["responder_id"], answer["choice"]) == ("karim.haddad", "Approve")

    # The approver the form was assigned to was told once, by e-mail, with the idempotency key and the form's link.
    queued = _outbox("approval_requested")
    assert [(r[0], r[3]) for r in queued] == [(KARIM, run_id)]  # not claire, who triggered the run
    claire.wait_for_dag(RELAY)
    for _ in range(2):  # a second relay run sends nothing again
        relay_run = claire.trigger(RELAY)
        assert claire.wait_for_run(RELAY, relay_run) == "success"
    assert [r[2] for r in _outbox("approval_requested")] == ["delivered"]
    messages = [email.message_from_bytes(m, policy=default_policy) for m in smtp]
    notices = [m for m in messages if m["Subject"].startswith("[Charte IA – Validation]")]
    assert len(notices) == 1
    assert notices[0]["To"] == KARIM
    assert notices[0]["X-Idempotency-Key"] == queued[0][1]
    text = notices[0].get_body(preferencelist=("html", "plain")).get_content()  # the provider sends HTML
    assert f"/dags/{DAG}/runs/" in text
    assert "required_actions" in text
    assert CLAIRE not in text
    for client in (claire, karim, ops):
        client.close()


def test_unanswered_form_rejects_the_refresh(airflow, policies_dir: Path) -> None:
    from charter_guardrails.ledger.models import Approval
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    policy = policies_dir / "citizen_requests.yaml"
    text = policy.read_text(encoding="utf-8")
    assert "response_timeout: P7D" in text
    policy.write_text(text.replace("response_timeout: P7D", "response_timeout: PT5S"), encoding="utf-8")

    claire = airflow.client("claire.martin")
    register("citizen_requests", "training", "citizen_requests/training.csv")
    run_id = claire.trigger(DAG)
    assert claire.wait_for_run(DAG, run_id) == "success"  # the refresh ended: rejected, not failed
    states = {t["task_id"]: t["state"] for t in claire.task_instances(DAG, run_id)}
    assert states["human_review"] == "success"
    assert states["publish"] == "skipped"
    assert ledger_state("citizen_requests")["versions"] == []
    with ledger_session() as session:
        rows = session.scalars(select(Approval).where(Approval.run_id == run_id)).all()
        assert [(a.decision, a.justification) for a in rows] == [("rejected", "no answer")]
    [answer] = _audit("approval.answered", run_id)
    assert answer["responder_id"] is None
    assert answer["choice"] == "Reject"
    assert [(r[0], r[3]) for r in _outbox("approval_timed_out")] == [(KARIM, run_id)]
    claire.close()
