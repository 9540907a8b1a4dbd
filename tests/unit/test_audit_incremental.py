"""Incremental verification of the audit chain from its last signed verification, the full verification that
streams, and the daily full run, on SQLite and PostgreSQL (the ``ledger_url`` fixture)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.keys import load_trusted_public_keys, sign
from charter_guardrails.ledger import audit_stream, db
from charter_guardrails.ledger.audit import ChainReport, Problem, append_event, checkpoint_message, event_hash
from charter_guardrails.ledger.audit_verify import (
    chain_summary,
    run_verification,
    scheduled_verification,
    verification_message,
    verify_full,
)
from charter_guardrails.ledger.models import Approval, AuditCheckpoint, AuditEvent, AuditVerification
from charter_guardrails.ledger.store import ledger_session
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select, update


def _append(n: int, start: int = 0) -> None:
    with ledger_session() as session:
        for i in range(start, start + n):
            append_event(session, actor="tester", action="test.event", use_case="citizen_requests", payload={"i": i})


def _verify(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code = charter(["audit", "verify", "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def _reasons(report: dict[str, Any]) -> list[str]:
    return [p["reason"] for p in report["problems"]]


def _records() -> list[AuditVerification]:
    with ledger_session() as session:
        return list(session.scalars(select(AuditVerification).order_by(AuditVerification.id)))


def test_a_verification_is_signed_and_the_next_one_reads_only_the_events_after_it(
    ledger_url: str, charter_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _append(6)
    code, first = _verify(capsys)
    assert code == 0, first
    assert (first["mode"], first["since_seq"], first["checked"], first["events"]) == ("incremental", 0, 6, 6)
    assert first["recorded"] is True
    _append(3, start=6)
    code, second = _verify(capsys)
    assert code == 0, second
    assert (second["since_seq"], second["checked"], second["events"], second["head_seq"]) == (6, 3, 9, 9)
    code, third = _verify(capsys)
    assert (code, third["checked"], third["recorded"]) == (0, 0, False)

    (charter_home / "keys" / "signing_ed25519.pem").unlink()  # the record verifies with the public key only
    public = load_trusted_public_keys()
    records = _records()
    assert [(r.mode, r.seq, r.ok, r.events) for r in records] == [
        ("incremental", 6, True, 6),
        ("incremental", 9, True, 3),
    ]
    with ledger_session() as session:
        head = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == 9))
    assert records[-1].head_hash == head
    for record in records:
        assert public[record.key_id].verify(_signature(record), verification_message(record)) is None
    code, fourth = _verify(capsys)
    assert (code, fourth["since_seq"], fourth["recorded"], fourth["not_recorded"]) == (
        0,
        9,
        False,
        "nothing after the last verification",
    )


def _signature(record: AuditVerification) -> bytes:
    import base64

    return base64.b64decode(record.signature)


def test_an_edit_before_the_verified_position_is_found_by_full_and_then_reported_until_a_full_run_passes(
    ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _append(6)
    assert _verify(capsys)[0] == 0
    _append(2, start=6)
    with db.get_engine(ledger_url).begin() as conn:  # event 3 edited, its stored hash left as it was
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="mallory"))
    code, incremental = _verify(capsys)
    assert (code, incremental["since_seq"], incremental["checked"]) == (0, 6, 2)  # before its starting point
    code, full = _verify(capsys, "--full")
    assert code == 1
    assert full["mode"] == "full"
    assert full["first_broken"]["seq"] == 3
    assert full["checked"] == 8
    assert full["recorded"] is True
    assert full["last_full"]["ok"] is False
    assert full["last_full"]["first_broken"] == 3
    code, after = _verify(capsys)
    assert code == 1, after
    assert after["first_broken"]["seq"] == 3
    assert any("the full verification of" in r for r in _reasons(after))

    with db.get_engine(ledger_url).begin() as conn:  # restored
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="tester"))
    assert _verify(capsys)[0] == 1  # still broken: only a full verification clears it
    code, restored = _verify(capsys, "--full")
    assert (code, restored["last_full"]["ok"]) == (0, True)
    assert _verify(capsys)[0] == 0


def test_a_chain_rewritten_through_the_verified_position_is_found_by_the_incremental_verification(
    ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _append(6)
    assert _verify(capsys)[0] == 0
    _append(2, start=6)
    other = Ed25519PrivateKey.generate()
    with db.get_engine(ledger_url).begin() as conn:  # edit event 2, re-hash and re-sign (own key) from there on
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor="mallory"))
        prev = conn.execute(select(AuditEvent.hash).where(AuditEvent.seq == 1)).scalar_one()
        for row in (
            conn.execute(select(AuditEvent).where(AuditEvent.seq >= 2).order_by(AuditEvent.seq)).mappings().all()
        ):
            new_hash = event_hash(AuditEvent(**{**row, "prev_hash": prev}))
            conn.execute(update(AuditEvent).where(AuditEvent.seq == row["seq"]).values(prev_hash=prev, hash=new_hash))
            signature, kid = sign(checkpoint_message(row["seq"], new_hash), other)
            conn.execute(
                update(AuditCheckpoint)
                .where(AuditCheckpoint.seq == row["seq"])
                .values(head_hash=new_hash, signature=signature, key_id=kid)
            )
            prev = new_hash
    code, report = _verify(capsys)
    assert code == 1, report
    assert report["since_seq"] == 6
    assert report["first_broken"]["seq"] == 6
    assert "event 6 changed since it was verified (edited): run `charter audit verify --full`" in _reasons(report)
    code, full = _verify(capsys, "--full")
    assert (code, full["first_broken"]["seq"]) == (1, 2)


@pytest.mark.parametrize("forgery", ["moved_forward", "signed_by_another_key", "result_flipped"])
def test_a_verification_record_that_does_not_verify_is_reported(
    ledger_url: str, capsys: pytest.CaptureFixture[str], forgery: str
) -> None:
    _append(4)
    assert _verify(capsys, "--full")[0] == 0
    _append(3, start=4)
    assert _verify(capsys)[0] == 0
    with db.get_engine(ledger_url).begin() as conn:
        table = AuditVerification.__table__
        last_id = conn.execute(select(func.max(table.c.id))).scalar_one()
        if forgery == "moved_forward":
            conn.execute(update(table).where(table.c.id == last_id).values(seq=8))
        elif forgery == "signed_by_another_key":
            conn.execute(
                update(table)
                .where(table.c.id == last_id)
                .values(signature=sign(b"anything", Ed25519PrivateKey.generate())[0])
            )
        else:
            first_id = conn.execute(select(func.min(table.c.id))).scalar_one()
            conn.execute(update(table).where(table.c.id == first_id).values(ok=False))
    code, report = _verify(capsys)
    assert code == 1, report
    assert any("invalid signature" in r for r in _reasons(report)), report


def test_the_integrity_monitor_runs_in_full_on_the_first_run_of_each_day(ledger_url: str) -> None:
    _append(5)
    day = datetime(2031, 3, 1, 0, 5, tzinfo=UTC)
    first = scheduled_verification(now=day)
    assert (first.report.mode, first.report.ok, first.recorded) == ("full", True, True)
    _append(2, start=5)
    later = scheduled_verification(now=day + timedelta(hours=1))
    assert (later.report.mode, later.report.since_seq, later.report.checked) == ("incremental", 5, 2)
    with db.get_engine(ledger_url).begin() as conn:  # before the verified position
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(action="approval.approved"))
    hourly = scheduled_verification(now=day + timedelta(hours=23, minutes=50))
    assert (hourly.report.mode, hourly.report.since_seq, hourly.report.ok) == ("incremental", 7, True)
    next_day = scheduled_verification(now=day + timedelta(days=1))
    assert next_day.report.mode == "full"
    assert not next_day.report.ok
    assert next_day.summary()["first_broken"]["seq"] == 2
    assert "audit chain BROKEN (full verification)" in next_day.summary()["message"]


def test_audited_rows_are_checked_against_their_last_event_on_every_incremental_verification(
    ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with ledger_session() as session:
        approvals = [
            Approval(use_case="citizen_requests", run_id=f"r{i}", decision="approved", actor="claire") for i in range(3)
        ]
        for approval in approvals:
            session.add(approval)
            append_event(session, actor="claire", action="approval.approved", subject=approval)
        approvals[1].justification = "revu"
        append_event(session, actor="claire", action="approval.amended", subject=approvals[1])
        ids = [a.id for a in approvals]
    _append(2)
    assert _verify(capsys)[0] == 0
    with db.get_engine(ledger_url).begin() as conn:
        conn.execute(update(Approval).where(Approval.id == ids[1]).values(justification=None))
    code, report = _verify(capsys)
    assert code == 1
    assert report["checked"] == 0  # no event after the verified position: the rows are checked all the same
    assert report["first_broken"] == {
        "seq": 4,
        "subject": f"approvals#{ids[1]}",
        "reason": "row differs from its last audited state (edited outside the ledger)",
    }
    with db.get_engine(ledger_url).begin() as conn:
        conn.execute(update(Approval).where(Approval.id == ids[1]).values(justification="revu"))
        conn.execute(delete(Approval).where(Approval.id == ids[2]))
    code, report = _verify(capsys)
    assert code == 1
    assert [(p["seq"], p["subject"]) for p in report["problems"]] == [(3, f"approvals#{ids[2]}")]


def test_a_page_verifies_a_bounded_number_of_events_and_records_its_progress(ledger_url: str) -> None:
    _append(12)
    with ledger_session() as session:
        backlog = chain_summary(session, max_events=10)
    assert (backlog["ok"], backlog["pending"], backlog["since_seq"]) == (None, 12, 0)
    assert "run `charter audit verify`" in backlog["error"]
    assert backlog["last_full"] is None
    assert _records() == []
    assert run_verification(full=True).report.ok
    _append(3, start=12)
    with ledger_session() as session:
        page = chain_summary(session, max_events=10)
    assert (page["ok"], page["mode"], page["since_seq"], page["checked"], page["events"]) == (
        True,
        "incremental",
        12,
        3,
        15,
    )
    assert page["last_full"]["ok"] is True
    assert page["last_full"]["head_seq"] == 12
    assert page["last_full"]["authentic"] is True
    with ledger_session() as session:
        again = chain_summary(session, max_events=10)
    assert (again["since_seq"], again["checked"]) == (15, 0)


def test_the_full_verification_reports_progress_and_keeps_the_problems_bounded(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(1100)
    calls: list[tuple[int, float]] = []
    monkeypatch.setattr(audit_stream, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(audit_stream, "BATCH_ROWS", 100)
    with ledger_session() as session:
        report = verify_full(session, progress=lambda rows, seconds: calls.append((rows, seconds)))
    assert report.ok
    assert report.checked == 1100
    assert calls
    assert calls[0][0] == 1024
    with db.get_engine(ledger_url).begin() as conn:  # every hash broken: 1100 problems
        conn.execute(update(AuditEvent).values(actor="mallory"))
    monkeypatch.setattr("charter_guardrails.ledger.audit.MAX_PROBLEMS", 50)
    with ledger_session() as session:
        broken = verify_full(session)
    assert len(broken.problems) == 50
    assert broken.problems_omitted == 1050
    assert [p.seq for p in broken.problems] == list(range(1, 51))
    assert not broken.ok


def test_the_report_keeps_the_problems_with_the_lowest_events() -> None:
    report = ChainReport()
    for seq in [*range(3000, 0, -1), None]:
        report.add(Problem(seq, "x"))
    report.trim()
    assert [p.seq for p in report.problems[:3]] == [1, 2, 3]
    assert len(report.problems) == 1000
    assert report.problems_omitted == 2001
    assert report.first_broken is not None
    assert report.first_broken.seq == 1


def test_a_full_verification_in_progress_does_not_hold_back_appends(ledger_url: str) -> None:
    from charter_guardrails.ledger import audit_verify

    _append(3)
    appended = threading.Event()
    with audit_verify._reading_session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 3

        def writer() -> None:
            _append(1, start=3)
            appended.set()

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(timeout=10)
        assert appended.is_set(), "the append waited for the verification's transaction"
    with ledger_session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 4


def test_a_chain_cut_below_the_verified_position_is_found_by_the_incremental_verification(
    ledger_url: str, charter_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _append(6)
    assert _verify(capsys)[0] == 0
    (charter_home / "audit" / "head.json").unlink()  # the anchor gone too: only the verification record is left
    with db.get_engine(ledger_url).begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.seq >= 4))
        conn.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq >= 4))
    code, report = _verify(capsys)
    assert code == 1, report
    assert report["head_seq"] == 3
    assert "event 6, verified before, is missing: run `charter audit verify --full`" in _reasons(report)
