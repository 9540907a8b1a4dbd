"""The ledger and its audit chain, on SQLite and PostgreSQL (see the ``ledger_url`` fixture)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.keys import init_keys, load_trusted_public_keys
from charter_guardrails.core.results import CheckResult, Verdict
from charter_guardrails.incidents.incident import (
    BreachType,
    IncidentDraft,
    IncidentStatus,
    raise_incident,
    transition_incident,
)
from charter_guardrails.ledger import db
from charter_guardrails.ledger.audit import append_event, verify_chain
from charter_guardrails.ledger.models import AlertOutbox, Approval, AuditCheckpoint, AuditEvent, Incident
from charter_guardrails.ledger.store import (
    get_or_create_check_run,
    ledger_session,
    record_check_result,
    results_for_run,
)
from sqlalchemy import delete, select, text, update


def _result(verdict: str = "pass", dataset: str = "training") -> CheckResult:
    return CheckResult(
        check="integrity",
        verdict=verdict,
        engagements=["surete.2"],
        summary="ok",
        dataset=dataset,
        metrics={"rows": 10},
    )


def _seed_events(n: int = 6) -> None:
    with ledger_session() as s:
        for i in range(n):
            append_event(
                s, actor="tester", action="test.event", use_case="citizen_requests", run_id=f"r{i}", payload={"i": i}
            )


def _verify_json(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = charter(["audit", "verify", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_unmigrated_ledger_says_which_command_to_run(charter_home, monkeypatch) -> None:
    monkeypatch.setenv("CHARTER_LEDGER_URL", f"sqlite:///{charter_home / 'fresh.db'}")
    with pytest.raises(db.LedgerNotMigrated, match="charter ledger migrate"), ledger_session():
        pass
    assert charter(["audit", "verify"]) == 2


def test_sqlite_runs_in_wal_with_full_sync(charter_home) -> None:
    url = f"sqlite:///{charter_home / 'wal.db'}"
    db.migrate(url)
    with db.get_engine(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_check_results_are_idempotent_per_run(ledger_url: str) -> None:
    for verdict in ("pass", "fail"):
        with ledger_session() as s:
            run = get_or_create_check_run(s, use_case="citizen_requests", dag_id="d", run_id="r1")
            record_check_result(s, run, _result(verdict))
    with ledger_session() as s:
        run = get_or_create_check_run(s, use_case="citizen_requests", dag_id="d", run_id="r1")
        results = results_for_run(s, run)
    assert [r.verdict for r in results] == [Verdict.FAIL]


def test_untouched_chain_verifies(ledger_url: str, capsys) -> None:
    _seed_events()
    code, report = _verify_json(capsys)
    assert code == 0
    assert report["ok"]
    assert report["events"] == 6


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder", "insert", "truncate", "resign_other_key"])
def test_tampered_chain_is_detected_and_first_broken_event_named(
    ledger_url: str, capsys, tamper: str, charter_home
) -> None:
    _seed_events()
    engine = db.get_engine(ledger_url)
    with engine.begin() as conn:
        if tamper == "edit":
            conn.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="mallory"))
        elif tamper == "delete":
            conn.execute(delete(AuditEvent).where(AuditEvent.seq == 3))
            conn.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq == 3))
        elif tamper == "reorder":
            conn.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(seq=1000))
            conn.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(seq=3))
            conn.execute(update(AuditEvent).where(AuditEvent.seq == 1000).values(seq=4))
        elif tamper == "insert":
            row = conn.execute(select(AuditEvent).where(AuditEvent.seq == 6)).mappings().one()
            conn.execute(
                AuditEvent.__table__.insert().values({**row, "seq": 7, "hash": "f" * 64, "prev_hash": row["hash"]})
            )
        elif tamper == "truncate":
            conn.execute(delete(AuditEvent).where(AuditEvent.seq >= 5))
            conn.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq >= 5))
        elif tamper == "resign_other_key":
            _rewrite_and_resign_from(conn, 3)
    code, report = _verify_json(capsys)
    assert code == 1
    assert not report["ok"]
    expected_first = {"edit": 3, "delete": 3, "reorder": 3, "insert": 7, "truncate": 5, "resign_other_key": 3}[tamper]
    assert report["first_broken"]["seq"] == expected_first, report
    charter(["audit", "verify"])
    assert f"first broken event {expected_first}" in capsys.readouterr().out


def _rewrite_and_resign_from(conn, seq: int) -> None:
    """An attacker who edits an event, recomputes every later hash and re-signs with a key of their own."""
    from charter_guardrails.core.keys import sign
    from charter_guardrails.ledger.audit import checkpoint_message, event_hash
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = Ed25519PrivateKey.generate()
    conn.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(actor="mallory"))
    prev = conn.execute(select(AuditEvent.hash).where(AuditEvent.seq == seq - 1)).scalar_one()
    for row in conn.execute(select(AuditEvent).where(AuditEvent.seq >= seq).order_by(AuditEvent.seq)).mappings().all():
        ev = AuditEvent(**{**row, "prev_hash": prev})
        new_hash = event_hash(ev)
        conn.execute(update(AuditEvent).where(AuditEvent.seq == ev.seq).values(prev_hash=prev, hash=new_hash))
        signature, kid = sign(checkpoint_message(ev.seq, new_hash), other)
        conn.execute(
            update(AuditCheckpoint)
            .where(AuditCheckpoint.seq == ev.seq)
            .values(head_hash=new_hash, signature=signature, key_id=kid)
        )
        prev = new_hash


def test_verification_needs_only_the_public_key(ledger_url: str, charter_home, monkeypatch, capsys) -> None:
    _seed_events(3)
    (charter_home / "keys" / "signing_ed25519.pem").unlink()
    code, report = _verify_json(capsys)
    assert code == 0
    assert report["events"] == 3


def test_rotated_key_keeps_old_heads_verifiable(ledger_url: str, charter_home, capsys) -> None:
    _seed_events(2)
    keys_dir = charter_home / "keys"
    (keys_dir / "retired").mkdir()
    (keys_dir / "signing_ed25519.pub").rename(keys_dir / "retired" / "old.pub")
    init_keys(force=True)
    _seed_events(2)
    assert len(load_trusted_public_keys()) == 2
    code, report = _verify_json(capsys)
    assert code == 0, report


def _draft(run_id: str = "run-1") -> IncidentDraft:
    return IncidentDraft(
        breach_type=BreachType.INTEGRITY,
        severity="critical",
        dataset="training",
        run_id=run_id,
        title="Corruption",
        nature="data changed",
        facts={"chunk": 0},
        likely_consequences="model trained on altered data",
        measures_taken=["refresh blocked"],
        approx_records=4000,
    )


def test_incident_is_unique_per_dataset_and_run_with_outbox_in_same_transaction(ledger_url: str, policies) -> None:
    policy = policies["citizen_requests"]
    with ledger_session() as s:
        first, created = raise_incident(s, policy, _draft())
        assert created
    with ledger_session() as s:
        again, created_again = raise_incident(s, policy, _draft())
        assert not created_again
        assert again.id == first.id
        outbox = s.scalars(select(AlertOutbox)).all()
        assert {o.recipient for o in outbox} == set(policy.alert_recipients)
        incident = s.get(Incident, first.id)
        assert incident.notify_deadline - incident.detected_at == timedelta(hours=72)
        assert incident.data_subject_categories == ["usagers"]
        assert incident.dpo_contact.startswith("Délégué")


def test_incident_rolled_back_leaves_no_outbox(ledger_url: str, policies) -> None:
    def worker_dies_after_raising() -> None:
        with ledger_session() as s:
            raise_incident(s, policies["citizen_requests"], _draft())
            raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        worker_dies_after_raising()
    with ledger_session() as s:
        assert s.scalars(select(Incident)).all() == []
        assert s.scalars(select(AlertOutbox)).all() == []
        assert s.scalars(select(AuditEvent)).all() == []


def test_incident_transitions_and_row_tampering(ledger_url: str, policies, capsys) -> None:
    with ledger_session() as s:
        incident, _ = raise_incident(s, policies["citizen_requests"], _draft())
        incident_id = incident.id
    with ledger_session() as s:
        transition_incident(s, incident_id, IncidentStatus.ACKNOWLEDGED, actor="rssi", comment="on it")
    with pytest.raises(Exception, match="cannot become acknowledged"), ledger_session() as s:
        transition_incident(s, incident_id, IncidentStatus.ACKNOWLEDGED, actor="rssi")
    assert _verify_json(capsys)[0] == 0
    with db.get_engine(ledger_url).begin() as conn:
        conn.execute(update(Incident).where(Incident.id == incident_id).values(status="resolved"))
    code, report = _verify_json(capsys)
    assert code == 1
    assert report["first_broken"]["subject"] == f"incidents#{incident_id}"


def test_row_inserted_or_deleted_behind_the_ledger(ledger_url: str, capsys) -> None:
    with ledger_session() as s:
        approval = Approval(
            use_case="citizen_requests", run_id="r", decision="approved", actor="claire", overridden_checks=[]
        )
        s.add(approval)
        append_event(s, actor="claire", action="approval.recorded", subject=approval, use_case="citizen_requests")
    with db.get_engine(ledger_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO approvals (use_case, run_id, decision, actor, overridden_checks, decided_at) "
                "VALUES ('citizen_requests', 'r2', 'override', 'mallory', '[]', CURRENT_TIMESTAMP)"
            )
        )
    code, report = _verify_json(capsys)
    assert code == 1
    assert any("inserted outside" in p["reason"] for p in report["problems"])
    with db.get_engine(ledger_url).begin() as conn:
        conn.execute(delete(Approval))
    code, report = _verify_json(capsys)
    assert code == 1
    assert any("deleted outside" in p["reason"] for p in report["problems"])


def test_report_without_anchor_or_events(ledger_url: str) -> None:
    with ledger_session() as s:
        report = verify_chain(s)
    assert report.ok
    assert report.events == 0
