"""What decisions rest on, in the audit chain: check runs with their results and PII findings, and the alert
outbox, on SQLite and PostgreSQL (the ``ledger_url`` fixture). Each tamper is made with plain SQL on its own
connection, behind the library, and must be reported with the run (or the outbox row) it touches."""

# The tampers are plain SQL built from ids this test wrote itself, never from input.
# ruff: noqa: S608

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from charter_guardrails.checks.privacy.report import ColumnScan, EntityFinding, ScanReport
from charter_guardrails.checks.privacy.verdict import ColumnVerdict, PersonalDataOutcome, record_findings
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.results import CheckResult
from charter_guardrails.incidents.incident import BreachType, IncidentDraft, raise_incident
from charter_guardrails.incidents.messages import Alert
from charter_guardrails.incidents.relay import Backoff, relay_once
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.audit_verify import verify_full, verify_incremental
from charter_guardrails.ledger.models import Approval, AuditEvent
from charter_guardrails.ledger.store import (
    finish_check_run,
    get_or_create_check_run,
    ledger_session,
    record_check_result,
)
from sqlalchemy import create_engine, text

RUN_ID = "manual__2026-03-02T08:00:00+00:00"


class Inbox:
    """A sender that keeps what it is given, or refuses it (``fail``) like a destination that is down."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.sent = fail, []

    def send(self, alert: Alert) -> None:
        if self.fail:
            raise OSError("destination unreachable")
        self.sent.append(alert.outbox_id)


def _outcome(result: CheckResult) -> PersonalDataOutcome:
    findings = [
        EntityFinding("FR_PHONE", 37, 0.0074, 0.82, 0.95, ["06 ** ** ** 78"]),
        EntityFinding("EMAIL_ADDRESS", 5, 0.001, 0.9, 0.99, ["j***@example.fr"]),
    ]
    column = ColumnScan(name="comment", kind="free_text", rows=5000, non_null=4900, distinct=4800, findings=findings)
    scan = ScanReport(
        source="citizen_requests/training",
        mode="sampling",
        rows=5000,
        scanned_rows=5000,
        min_score=0.5,
        columns=[column],
        guarantee="exhaustive",
        seconds=0.1,
    )
    verdict = ColumnVerdict("comment", True, ["EMAIL_ADDRESS"], ["EMAIL_ADDRESS", "FR_PHONE"], ["FR_PHONE"], "x")
    return PersonalDataOutcome(result=result, scan=scan, columns=[verdict])


def _result(check: str, verdict: str) -> CheckResult:
    return CheckResult(
        check=check,
        verdict=verdict,
        engagements=["surete.2"],
        summary=f"{check}: {verdict}",
        dataset="training",
        metrics={"rows": 5000},
    )


def _populate(policies: dict[str, Any]) -> dict[str, Any]:
    """A run with three results, two PII findings and its decision; an incident with alerts, some delivered."""
    with ledger_session() as s:
        run = get_or_create_check_run(s, use_case="citizen_requests", dag_id="refresh", run_id=RUN_ID)
        record_check_result(s, run, _result("integrity", "pass"))
        quality = record_check_result(s, run, _result("quality", "fail"))
        scanned = record_check_result(s, run, _result("drift", "warn"))
        record_findings(s, scanned, _outcome(_result("drift", "warn")))
        finish_check_run(s, run, decision="blocked", blocked_by=["quality"])
        ids = {"run": run.id, "quality": quality.id, "scanned": scanned.id}
    with ledger_session() as s:
        other = get_or_create_check_run(s, use_case="citizen_requests", dag_id="refresh", run_id="second-run")
        record_check_result(s, other, _result("integrity", "pass"))
        ids["other"] = other.id
    draft = IncidentDraft(
        breach_type=BreachType.INTEGRITY,
        severity="high",
        dataset="training",
        run_id=RUN_ID,
        title="Corruption",
        nature="altération",
        likely_consequences="modèle entraîné sur des données altérées",
        facts={"chunk": 1},
        measures_taken=["rafraîchissement bloqué"],
    )
    with ledger_session() as s:
        incident, _ = raise_incident(s, policies["citizen_requests"], draft)
        ids["incident"] = incident.id
    now = datetime.now(UTC)
    relay_once({"email": Inbox()}, clock=lambda: now, batch_size=1)  # one alert delivered, the other pending
    return ids


def _verify(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code = charter(["audit", "verify", "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def _sql(url: str, *statements: str, foreign_keys: bool = True) -> None:
    """Plain SQL on a connection of its own, as someone with write access to the database would write it.

    Without ``foreign_keys``: SQLite's default (the ledger's engine turns them on), PostgreSQL's replica role.
    """
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite" and foreign_keys:
                conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            if conn.dialect.name == "postgresql" and not foreign_keys:
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # the superuser skips FKs
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def _subjects(report: dict[str, Any]) -> dict[str, str]:
    return {p["subject"]: p["reason"] for p in report["problems"] if p["subject"]}


def test_an_untouched_ledger_with_runs_findings_and_alerts_verifies(ledger_url, policies, capsys) -> None:
    ids = _populate(policies)
    code, report = _verify(capsys, "--full")
    assert code == 0, json.dumps(report)
    assert report["ok"]
    with ledger_session() as s:
        subjects = {(e.subject_type, e.action) for e in s.query(AuditEvent)}
        assert {("check_runs", "run.started"), ("check_runs", "check.recorded")} <= subjects
        assert {("check_runs", "findings.recorded"), ("check_runs", "run.decided")} <= subjects
        assert {("alert_outbox", "alert.queued"), ("alert_outbox", "alert.delivered")} <= subjects
        last = s.query(AuditEvent).filter_by(subject_type="check_runs", subject_id=str(ids["run"]))
        payload = last.order_by(AuditEvent.seq.desc()).first().payload
        assert payload["rows"] == {"check_results": 3, "pii_findings": 2}
        assert incremental_ok(s)


def incremental_ok(session: Any) -> bool:
    return verify_incremental(session).ok and verify_full(session).ok


TAMPERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "verdict flipped": lambda i: [f"UPDATE check_results SET verdict = 'pass' WHERE id = {i['quality']}"],
    "summary changed": lambda i: [f"UPDATE check_results SET summary = 'all good' WHERE id = {i['quality']}"],
    "finding count changed": lambda i: [f"UPDATE pii_findings SET count = 1 WHERE check_result_id = {i['scanned']}"],
    "finding deleted": lambda i: [
        f"DELETE FROM pii_findings WHERE id = (SELECT MIN(id) FROM pii_findings WHERE check_result_id = {i['scanned']})"
    ],
    "finding inserted": lambda i: [
        'INSERT INTO pii_findings (check_result_id, "column", entity_type, count, share, mean_score, max_score, '
        f"masked_examples, allowed) VALUES ({i['scanned']}, 'comment', 'IBAN', 1, 0.1, 0.9, 0.9, '[]', true)"
    ],
    "result deleted": lambda i: [f"DELETE FROM check_results WHERE id = {i['quality']}"],
    "result inserted": lambda i: [
        'INSERT INTO check_results (check_run_id, "check", dataset, verdict, severity, engagements, summary, '
        f"metrics, evidence, created_at) VALUES ({i['run']}, 'footprint', 'training', 'pass', 'info', '[]', 'ok', "
        "'{}', '{}', CURRENT_TIMESTAMP)"
    ],
    "decision edited": lambda i: [f"UPDATE check_runs SET decision = 'published' WHERE id = {i['run']}"],
}


def _touch(run_pk: int) -> None:
    """An event about the run after the verified position, its rows unchanged (a task of the run ran again)."""
    from charter_guardrails.ledger.audit_rows import run_changed

    with ledger_session() as s:
        run_changed(s, run_pk, action="run.reviewed", payload={})


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_each_tamper_of_a_run_or_its_rows_is_reported_with_its_run(ledger_url, policies, capsys, tamper) -> None:
    ids = _populate(policies)
    assert _verify(capsys)[0] == 0  # the verified position
    _touch(ids["run"])  # the incremental verification reads the runs with an event after that position
    _sql(ledger_url, *TAMPERS[tamper](ids))
    for mode in ((), ("--full",)):
        code, report = _verify(capsys, *mode)
        assert code == 1, (tamper, report)
        reasons = _subjects(report)
        assert f"check_runs#{ids['run']}" in reasons, (tamper, report)
        assert f"run {RUN_ID}" in reasons[f"check_runs#{ids['run']}"]
        assert f"check_runs#{ids['other']}" not in reasons  # the other run is untouched
    if tamper in ("finding deleted", "finding inserted", "result deleted", "result inserted"):
        assert "deleted or inserted" in reasons[f"check_runs#{ids['run']}"]
    if tamper == "decision edited":
        assert "the run row differs" in reasons[f"check_runs#{ids['run']}"]


def test_a_tamper_of_a_run_without_an_event_since_the_last_verification_needs_the_full_one(
    ledger_url, policies, capsys
) -> None:
    """The incremental verification reads only the runs with an event after the verified position: runs and their
    rows grow with the chain. The full one (``--full``, the integrity monitor's daily run) reads every row."""
    ids = _populate(policies)
    assert _verify(capsys)[0] == 0
    _sql(ledger_url, *TAMPERS["verdict flipped"](ids))
    assert _verify(capsys)[0] == 0
    code, report = _verify(capsys, "--full")
    assert code == 1
    assert f"run {RUN_ID}" in _subjects(report)[f"check_runs#{ids['run']}"]


def test_a_deleted_run_and_rows_whose_run_does_not_exist_are_reported(ledger_url, policies, capsys) -> None:
    ids = _populate(policies)
    _sql(
        ledger_url,
        "DELETE FROM pii_findings WHERE check_result_id IN "
        f"(SELECT id FROM check_results WHERE check_run_id = {ids['run']})",
        f"DELETE FROM check_results WHERE check_run_id = {ids['run']}",
        f"DELETE FROM check_runs WHERE id = {ids['run']}",
    )
    code, report = _verify(capsys)
    assert code == 1
    reason = _subjects(report)[f"check_runs#{ids['run']}"]
    assert f"run {RUN_ID}" in reason
    assert "no longer exists" in reason
    # a result and a finding pointing at a run and a result that do not exist (foreign keys bypassed)
    _sql(
        ledger_url,
        'INSERT INTO check_results (id, check_run_id, "check", dataset, verdict, severity, engagements, summary, '
        "metrics, evidence, created_at) VALUES (9001, 9999, 'quality', 'training', 'pass', 'info', '[]', 'ok', '{}', "
        "'{}', CURRENT_TIMESTAMP)",
        'INSERT INTO pii_findings (id, check_result_id, "column", entity_type, count, share, mean_score, max_score, '
        "masked_examples, allowed) VALUES (9002, 8888, 'comment', 'IBAN', 1, 0.1, 0.9, 0.9, '[]', true)",
        foreign_keys=False,
    )
    code, report = _verify(capsys, "--full")
    assert code == 1
    reasons = _subjects(report)
    assert "run id 9999, which does not exist" in reasons["check_results#9001"]
    assert "result id 8888, which does not exist" in reasons["pii_findings#9002"]


def test_outbox_rows_are_audited_and_retries_add_no_event(ledger_url, policies, capsys) -> None:
    ids = _populate(policies)
    with ledger_session() as s:
        pending = s.execute(text("SELECT MIN(id) FROM alert_outbox WHERE status = 'pending'")).scalar_one()
        delivered = s.execute(text("SELECT MIN(id) FROM alert_outbox WHERE status = 'delivered'")).scalar_one()
        events_before = s.query(AuditEvent).count()
    assert pending is not None
    assert delivered is not None
    later = datetime.now(UTC) + timedelta(minutes=5)
    # a failed attempt changes attempts, next_attempt_at and last_error only: no event, and the chain verifies
    assert relay_once({"email": Inbox(fail=True)}, clock=lambda: later).failed == 1
    with ledger_session() as s:
        assert s.query(AuditEvent).count() == events_before
        assert s.execute(text(f"SELECT attempts FROM alert_outbox WHERE id = {pending}")).scalar_one() == 1
    assert _verify(capsys)[0] == 0
    _sql(ledger_url, f"UPDATE alert_outbox SET attempts = attempts + 3 WHERE id = {delivered}")
    assert _verify(capsys)[0] == 0  # delivery bookkeeping is left out of the digest (documented)
    for statement, row, expected in (
        (f"UPDATE alert_outbox SET status = 'delivered' WHERE id = {pending}", pending, "edited outside"),
        (f"UPDATE alert_outbox SET status = 'pending' WHERE id = {delivered}", delivered, "edited outside"),
        (f"DELETE FROM alert_outbox WHERE id = {delivered}", delivered, "deleted outside"),
    ):
        _sql(ledger_url, statement)
        code, report = _verify(capsys)
        assert code == 1
        assert expected in _subjects(report)[f"alert_outbox#{row}"]
    _sql(
        ledger_url,
        "INSERT INTO alert_outbox (id, incident_id, channel, recipient, idempotency_key, payload, status, attempts, "
        f"next_attempt_at, delivered_at, created_at) VALUES (7001, {ids['incident']}, 'email', 'x@example.fr', "
        "'forged', '{}', 'delivered', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    )
    code, report = _verify(capsys, "--full")
    assert code == 1
    assert "not recorded in the audit chain" in _subjects(report)["alert_outbox#7001"]


def test_a_dead_alert_is_audited(ledger_url, policies, capsys) -> None:
    _populate(policies)
    now = datetime.now(UTC)
    for minutes in range(20, 200, 20):
        at = now + timedelta(minutes=minutes)
        relay_once({"email": Inbox(fail=True)}, clock=lambda at=at: at, backoff=Backoff(max_attempts=2))
    with ledger_session() as s:
        dead = s.query(AuditEvent).filter_by(action="alert.dead").all()
        assert len(dead) == 1
        assert dead[0].subject_type == "alert_outbox"
    assert _verify(capsys)[0] == 0


def _old_ledger(url: str) -> None:
    """Rows as a ledger written before runs and alerts were audited holds them: no event about them."""
    with ledger_session() as s:
        approval = Approval(use_case="citizen_requests", run_id="r", decision="approved", actor="claire")
        s.add(approval)
        append_event(s, actor="claire", action="approval.recorded", subject=approval, use_case="citizen_requests")
    _sql(
        url,
        "INSERT INTO check_runs (id, use_case, dag_id, run_id, started_at, decision, blocked_by, reports) "
        "VALUES (1, 'citizen_requests', 'refresh', 'old-run', CURRENT_TIMESTAMP, 'passed', '[]', '{}')",
        'INSERT INTO check_results (check_run_id, "check", dataset, verdict, severity, engagements, summary, metrics, '
        "evidence, created_at) VALUES (1, 'quality', 'training', 'pass', 'info', '[]', 'ok', '{}', '{}', "
        "CURRENT_TIMESTAMP)",
        "INSERT INTO alert_outbox (id, incident_id, channel, recipient, idempotency_key, payload, status, attempts, "
        "next_attempt_at, created_at) VALUES (1, NULL, 'email', 'x@example.fr', 'old', '{}', 'delivered', 1, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    )


def test_an_upgraded_ledger_is_sealed_once_and_later_inserts_stay_reported(ledger_url, policies, capsys) -> None:
    _old_ledger(ledger_url)
    code, report = _verify(capsys)
    assert code == 1
    reasons = _subjects(report)
    assert "charter audit seal" in reasons["check_runs#1"]
    assert "run old-run" in reasons["check_runs#1"]
    assert "charter audit seal" in reasons["alert_outbox#1"]
    assert charter(["audit", "seal", "--json"]) == 0
    sealed = json.loads(capsys.readouterr().out)
    assert sealed["sealed"] == {"check_runs": 1, "alert_outbox": 1}
    assert _verify(capsys, "--full")[0] == 0
    # the sealed run is verified like any other from now on
    _sql(ledger_url, "UPDATE check_results SET verdict = 'fail' WHERE check_run_id = 1")
    assert "check_runs#1" in _subjects(_verify(capsys, "--full")[1])
    _sql(ledger_url, "UPDATE check_results SET verdict = 'pass' WHERE check_run_id = 1")
    # a row inserted behind the ledger after the upgrade is newer than the first audited row: not sealed
    _sql(
        ledger_url,
        "INSERT INTO check_runs (id, use_case, dag_id, run_id, started_at, blocked_by, reports) "
        "VALUES (5, 'citizen_requests', 'refresh', 'forged', CURRENT_TIMESTAMP, '[]', '{}')",
    )
    assert charter(["audit", "seal", "--json"]) == 1
    left = json.loads(capsys.readouterr().out)
    assert left["sealed"]["check_runs"] == 0
    assert left["left_ids"]["check_runs"] == [5]
    assert "check_runs#5" in _subjects(_verify(capsys, "--full")[1])
    assert charter(["audit", "seal", "--all", "--json"]) == 0  # after checking the row
    capsys.readouterr()
    assert _verify(capsys, "--full")[0] == 0  # a full verification, after the failed one
    assert _verify(capsys)[0] == 0


def test_sealing_needs_the_signing_key(ledger_url, charter_home, capsys) -> None:
    _old_ledger(ledger_url)
    (charter_home / "keys" / "signing_ed25519.pem").unlink()
    assert charter(["audit", "seal"]) == 2
    assert "check_runs#1" in _subjects(_verify(capsys)[1])


def test_results_recorded_at_once_by_parallel_tasks_of_one_run_verify(ledger_url, capsys) -> None:
    """Two tasks of one run record their results in overlapping transactions: the last event still covers both."""
    with ledger_session() as s:
        get_or_create_check_run(s, use_case="citizen_requests", dag_id="refresh", run_id=RUN_ID)
    errors: list[BaseException] = []

    def other_task() -> None:
        try:
            with ledger_session() as s:
                run = get_or_create_check_run(s, use_case="citizen_requests", dag_id="refresh", run_id=RUN_ID)
                record_check_result(s, run, _result("quality", "fail"))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    with ledger_session() as s:
        run = get_or_create_check_run(s, use_case="citizen_requests", dag_id="refresh", run_id=RUN_ID)
        record_check_result(s, run, _result("integrity", "pass"))  # holds the chain's lock until its commit
        thread = threading.Thread(target=other_task)
        thread.start()
        time.sleep(1.0)  # the other task writes its result and waits for the lock (or, on SQLite, for BEGIN)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert not errors, errors
    code, report = _verify(capsys, "--full")
    assert code == 0, report["problems"]


def test_the_gate_refuses_to_decide_on_rows_edited_outside_the_ledger(ledger_url, policies) -> None:
    """``results_for_run`` (what the gate, the routing and publish read) checks the run against its last event:
    otherwise the decision's own event would record the flipped verdict as audited."""
    from charter_guardrails.core.errors import LedgerTampered
    from charter_guardrails.ledger.models import CheckRun
    from charter_guardrails.ledger.store import results_for_run

    ids = _populate(policies)
    with ledger_session() as s:
        before = [r.verdict.value for r in results_for_run(s, s.get(CheckRun, ids["run"]))]
    assert before
    _sql(ledger_url, *TAMPERS["verdict flipped"](ids))
    with (
        ledger_session() as s,
        pytest.raises(LedgerTampered, match=rf"run {re.escape(RUN_ID)}: .* edited, inserted or deleted"),
    ):
        results_for_run(s, s.get(CheckRun, ids["run"]))
    with ledger_session() as s:  # the other run is untouched: decided on as before
        assert results_for_run(s, s.get(CheckRun, ids["other"]))
