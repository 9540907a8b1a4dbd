"""The human decision on real Airflow processes (api-server, scheduler, dag-processor, LocalExecutor),
answered through the same HITL REST API the UI uses, logged in as named approvers.

A ``dag.test()`` cannot answer a HITL task from outside, so this tier starts Airflow for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.support import ledger_state, register

DAG = "citizen_requests_model_refresh"
USERS = {
    "claire.martin": ("admin", "pw-claire"),
    "karim.haddad": ("admin", "pw-karim"),
    "viewer": ("viewer", "pw-viewer"),
}
JUSTIFICATION = "Écart de représentativité connu et documenté ; chaque orientation reste validée par un agent."


@pytest.fixture
def airflow(e2e_home: Path, airflow_db: Path):
    from charter_demo.local_airflow import LocalAirflow

    with LocalAirflow(home=airflow_db, users=USERS) as running:  # the session's migrated metadata database
        running.client("claire.martin").wait_for_dag(DAG)
        yield running


def _states(client, run_id: str) -> dict[str, str]:
    return {t["task_id"]: t["state"] for t in client.task_instances(DAG, run_id)}


def _finished(client, home: Path, run_id: str) -> str:
    """Wait for the run; on failure, say which task failed and why (from its log), to make the test debuggable."""
    state = client.wait_for_run(DAG, run_id)
    if state != "success":
        states = _states(client, run_id)
        errors = []
        for task_id in (t for t, s in states.items() if s == "failed"):
            for log in sorted(
                (home / "logs" / f"dag_id={DAG}" / f"run_id={run_id}" / f"task_id={task_id}").glob("attempt=*.log")
            ):
                lines = [
                    json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")
                ]
                errors += [
                    f"{task_id}: {e.get('event')} {str(e.get('error_detail', ''))[-1500:]}"
                    for e in lines
                    if e.get("level") == "error"
                ]
        return f"{state}: {states}; {errors}"
    return state


def test_approve_reject_and_override(airflow, e2e_home: Path, capsys) -> None:
    from charter_demo.local_airflow import AirflowRestError
    from charter_guardrails.cli.main import main as charter

    claire, karim, viewer = airflow.client("claire.martin"), airflow.client("karim.haddad"), airflow.client("viewer")

    # 1. Clean data: every guardrail passes; the other approver approves; v1 is published with its model card.
    register("citizen_requests", "training", "citizen_requests/training.csv")
    run_id = karim.trigger(DAG)
    detail = claire.wait_for_hitl(DAG, run_id, "human_review")
    assert detail["options"] == ["Approve", "Override", "Reject"]
    assert [u["id"] for u in detail["assigned_users"]] == ["claire.martin"]  # not karim, who triggered it
    assert "Tous les garde-fous sont conformes" in detail["body"]
    assert "| fairness |" in detail["body"]
    with pytest.raises(AirflowRestError, match="HTTP 403"):  # a viewer cannot decide
        viewer.answer_hitl(DAG, run_id, "human_review", "Approve")
    claire.answer_hitl(DAG, run_id, "human_review", "Approve")
    assert _finished(claire, airflow.home, run_id) == "success"
    assert _states(claire, run_id)["publish"] == "success"
    state = ledger_state("citizen_requests")
    assert state["versions"] == [(1, "production", "claire.martin")]
    card_dir = e2e_home / "models" / "citizen_requests" / "v1"
    card = (card_dir / "model_card.md").read_text(encoding="utf-8")
    for field in ("Finalité", "Base légale", "claire.martin", "Recours", "CO"):
        assert field in card, field
    label = json.loads((card_dir / "ai_label.json").read_text(encoding="utf-8"))
    assert label
    assert (card_dir / "ai_label.svg").read_text(encoding="utf-8").startswith("<svg")

    # 2 and 3. A biased sample, delivered to two refreshes that run at once: representativeness and fairness fail
    # in both. The approver rejects the first, and nothing changes; an override approver overrides the second with
    # a written justification: v2 is published, the override audited.
    register("citizen_requests", "training", "citizen_requests/training__biased.csv")
    rejected, overridden = (
        claire.trigger(DAG, {"training_file": "citizen_requests/training__biased.csv"}) for _ in range(2)
    )
    for run_id in (rejected, overridden):
        detail = karim.wait_for_hitl(DAG, run_id, "human_review")
        assert "Override" in detail["body"]
        assert "representativeness" in detail["body"]
    karim.answer_hitl(DAG, rejected, "human_review", "Reject")
    karim.wait_for_run(DAG, rejected)
    assert _states(karim, rejected)["publish"] == "skipped"
    assert ledger_state("citizen_requests")["versions"] == [(1, "production", "claire.martin")]
    karim.answer_hitl(DAG, overridden, "human_review", "Override", {"justification": JUSTIFICATION})
    assert _finished(karim, airflow.home, overridden) == "success"
    state = ledger_state("citizen_requests")
    assert state["versions"] == [(1, "retired", "claire.martin"), (2, "production", "karim.haddad")]
    assert ("overridden", "karim.haddad") in state["approvals"]
    assert ("rejected", "karim.haddad") in state["approvals"]
    capsys.readouterr()
    assert charter(["audit", "log", "--limit", "200", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert any(e["action"] == "approval.overridden" and e["actor"] == "karim.haddad" for e in events)
    assert charter(["audit", "verify"]) == 0
    for client in (claire, karim, viewer):
        client.close()
