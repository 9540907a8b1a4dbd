"""``integrity_monitor`` and ``incident_alert_relay`` with ``dag.test()``: an intact dataset passes,
a corrupted one fails without retry and raises one incident for that run, whose alert the relay
DAG delivers to a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
from email.policy import default as default_policy
from typing import Any

from tests.e2e.support import register, smtp_catcher


def _dag(dag_file: str, dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags" / dag_file))
    assert not bag.import_errors
    return bag.get_dag(dag_id)


def _task_instances(dag_run: Any) -> dict[tuple[str, int], Any]:
    return {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances()}


def _state(ti: Any) -> str:
    return str(getattr(ti.state, "value", ti.state))


def _xcom(dag_run: Any, task_id: str, map_index: int) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, map_index=map_index)
            .all()
        )
        return {r.key: XComModel.deserialize_value(r) for r in rows}


def test_monitor_passes_intact_then_fails_corrupted_once_and_relay_delivers(e2e_home, monkeypatch) -> None:
    from charter_guardrails.ledger.models import AlertOutbox, Incident, ManifestVerification
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    register("citizen_requests", "training", "citizen_requests/training.csv")
    monitor = _dag("integrity_monitor.py", "integrity_monitor")
    intact = monitor.test()
    tis = _task_instances(intact)
    assert _state(tis[("verify_dataset_integrity", 0)]) == "success"
    pushed = _xcom(intact, "verify_dataset_integrity", 0)
    assert set(pushed) == {"return_value"}
    assert pushed["return_value"]["check"] == "integrity"
    assert pushed["return_value"]["verdict"] == "pass"

    # The registered file is overwritten with the corrupted variant (same size, a few digits changed).
    data_dir = e2e_home / "data" / "citizen_requests"
    (data_dir / "training.csv").write_bytes((data_dir / "training__corrupted.csv").read_bytes())
    corrupted = monitor.test()
    assert _state(corrupted) == "failed"
    ti = _task_instances(corrupted)[("verify_dataset_integrity", 0)]
    assert _state(ti) == "failed"
    assert ti.try_number == 1
    with ledger_session() as session:
        incidents = session.scalars(select(Incident)).all()
        assert [(i.breach_type, i.dataset, i.run_id) for i in incidents] == [
            ("integrity", "training", corrupted.run_id)
        ]
        rows = (data_dir / "training.csv").read_bytes().count(b"\n") - 1
        assert incidents[0].facts["ranges"]
        assert incidents[0].approx_records == rows
        assert session.scalars(select(ManifestVerification.outcome).order_by(ManifestVerification.id)).all() == [
            "intact",
            "data_changed",
        ]
        assert {o.status for o in session.scalars(select(AlertOutbox))} == {"pending"}

    with smtp_catcher(monkeypatch) as received:
        relay_run = _dag("incident_alert_relay.py", "incident_alert_relay").test()
    assert _state(_task_instances(relay_run)[("relay_alert_outbox", -1)]) == "success"
    with ledger_session() as session:
        outbox = session.scalars(select(AlertOutbox)).all()
        assert {o.status for o in outbox} == {"delivered"}
        assert len(received) == len(outbox) == 2
    messages = [email.message_from_bytes(m, policy=default_policy) for m in received]
    assert {m["From"] for m in messages} == {
        "alertes-charte@ampmetropole.example"
    }  # the connection's sender: the provider sent it
    assert {m["X-Idempotency-Key"] for m in messages} == {o.idempotency_key for o in outbox}
    assert all(m["Subject"].startswith("[Charte IA – Sûreté] Incident n°") for m in messages)
