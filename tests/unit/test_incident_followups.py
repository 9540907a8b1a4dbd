"""Reminders before the 72-hour deadline and escalation, on SQLite and PostgreSQL, with a simulated clock.

The relay (``queue_followups`` then ``relay_once``) runs every simulated minute around each threshold and
is killed at seeded random points: a sender that delivers the message and then dies before the relay
records it, and crashes between queuing and relaying. The receiver counts distinct idempotency keys.
"""

from __future__ import annotations

import html
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from charter_guardrails.checks.integrity.manifest import build_manifest, sign_manifest
from charter_guardrails.checks.integrity.verification import ManifestSnapshot, verify_file
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import Contact
from charter_guardrails.incidents.followup import (
    SUPERSEDED,
    FollowupReport,
    queue_due_followups,
    queue_followups,
)
from charter_guardrails.incidents.incident import IncidentStatus, raise_incident, transition_incident
from charter_guardrails.incidents.messages import IDEMPOTENCY_HEADER, Alert, email_message, webhook_body
from charter_guardrails.incidents.relay import DEFAULT_LEASE, relay_once
from charter_guardrails.ledger.models import AlertOutbox, AuditEvent, Incident
from charter_guardrails.ledger.store import ledger_session
from sqlalchemy import select

PERSONAL_VALUES = ["Jeanne Dupont", "jeanne.dupont@example.fr", "06 12 34 56 78"]
OFFICER, DPO, ON_CALL = "rssi@ampmetropole.example", "dpo@ampmetropole.example", "astreinte@ampmetropole.example"
UI = "https://airflow.metropole.example"
THRESHOLDS = (48, 24, 6)


class Killed(BaseException):
    """The relay process dies (SIGKILL, out of memory): not an ``Exception``, so nothing inside catches it."""


@pytest.fixture
def policy(policies: dict[str, UseCasePolicy], monkeypatch: pytest.MonkeyPatch) -> UseCasePolicy:
    """``citizen_requests`` with one escalation contact, acknowledgement within 4 hours."""
    monkeypatch.setenv("CHARTER_UI_BASE_URL", UI + "/")
    base = policies["citizen_requests"]
    incidents = base.incidents.model_copy(
        update={"ack_within_hours": 4.0, "escalation": [Contact(name="Astreinte sécurité", email=ON_CALL)]}
    )
    return base.model_copy(update={"incidents": incidents})


def _raise_incident(policy: UseCasePolicy, tmp_path: Path, run: str = "scheduled__2026-11-28T00:00:00+00:00") -> int:
    """A real integrity incident: a CSV holding personal values is registered, corrupted and verified."""
    path = tmp_path / "requests.csv"
    path.write_text(
        "id;message\n"
        + "".join(f"{i};Rappeler {PERSONAL_VALUES[i % 3]} au sujet du dossier {i}\n" for i in range(300)),
        encoding="utf-8",
    )
    signed = sign_manifest(build_manifest(path, use_case="citizen_requests", dataset="training", chunk_size=1024))
    doc = signed.document
    snapshot = ManifestSnapshot(
        1, 1, doc, signed.signature, signed.key_id, doc["merkle_root"], doc["size_bytes"], doc["row_count"]
    )
    data = bytearray(path.read_bytes())
    data[2000] ^= 0x04
    path.write_bytes(bytes(data))
    draft = verify_file(path, snapshot, use_case="citizen_requests", dataset="training").incident_draft(run)
    assert draft is not None
    with ledger_session() as session:
        incident, created = raise_incident(session, policy, draft)
        assert created
        return incident.id


def _detected_at(incident_id: int) -> datetime:
    with ledger_session() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.detected_at


def _outbox() -> list[AlertOutbox]:
    with ledger_session() as session:
        return list(session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)))


@dataclass
class Received:
    key: str
    kind: str
    recipient: str
    at: datetime
    subject: str
    step: int | None


@dataclass
class Receiver:
    """The mail server's side: every message that got out of the relay, with the simulated time it arrived."""

    messages: list[Received] = field(default_factory=list)

    def first(self, kind: str) -> dict[str, Received]:
        out: dict[str, Received] = {}
        for m in self.messages:
            if m.kind == kind:
                out.setdefault(m.key, m)
        return out


class DyingSender:
    """Builds the real e-mail, hands it to the receiver, then on a random subset of calls dies before the record."""

    def __init__(self, receiver: Receiver, rng: random.Random, clock: Callable[[], datetime], p_kill: float) -> None:
        self.receiver, self.rng, self.clock, self.p_kill = receiver, rng, clock, p_kill
        self.kills: Counter[str] = Counter()
        self.disruptions: list[datetime] = []

    def send(self, alert: Alert) -> None:
        message = email_message(alert, sender="charte@example.org")
        payload = alert.payload
        step = payload.get("threshold_hours", payload.get("level"))
        self.receiver.messages.append(
            Received(
                message[IDEMPOTENCY_HEADER],
                payload.get("kind", "alert"),
                str(message["To"]),
                self.clock(),
                str(message["Subject"]),
                step,
            )
        )
        if self.rng.random() < self.p_kill:
            self.kills[alert.idempotency_key] += 1
            self.disruptions.append(self.clock())
            raise Killed


@dataclass
class Simulation:
    """The relay every simulated minute near a threshold (and every 30 minutes elsewhere), killed at random."""

    policy: UseCasePolicy
    t0: datetime
    seed: int
    p_kill: float = 0.3
    p_crash: float = 0.1
    receiver: Receiver = field(default_factory=Receiver)
    events: dict[timedelta, Callable[[], None]] = field(default_factory=dict)
    runs: int = 0
    minute_runs: set[int] = field(default_factory=set)

    def run(self, until: timedelta = timedelta(hours=72, minutes=30)) -> DyingSender:
        rng = random.Random(self.seed)
        now = {"at": self.t0}
        sender = DyingSender(self.receiver, rng, lambda: now["at"], self.p_kill)
        marks = [timedelta(0), timedelta(hours=4)] + [timedelta(hours=72 - h) for h in THRESHOLDS] + list(self.events)
        dense = {int(m.total_seconds() // 60) + d for m in marks for d in range(-5, 31)}
        end, minute = int(until.total_seconds() // 60), 0
        while minute <= end:
            now["at"] = self.t0 + timedelta(minutes=minute)
            for offset, event in list(self.events.items()):
                if now["at"] >= self.t0 + offset:
                    event()
                    del self.events[offset]
            busy = self._one_run(rng, sender, lambda: now["at"])
            self.runs += 1
            self.minute_runs.add(minute)
            minute = minute + 1 if busy else min([minute + 30 - minute % 30, *(d for d in dense if d > minute)])
        return sender

    def _one_run(self, rng: random.Random, sender: DyingSender, clock: Callable[[], datetime]) -> bool:
        """One relay pass; True when it left work behind (a kill, a crash, or rows still due)."""
        try:
            with ledger_session() as session:
                report = queue_followups(session, now=clock(), policies={self.policy.id: self.policy})
                if rng.random() < self.p_crash / 2:
                    raise Killed  # dies before the commit: nothing it queued is kept
            if rng.random() < self.p_crash / 2:
                raise Killed  # dies after the commit, before the relay
            relayed = relay_once({"email": sender}, clock=clock)
        except Killed:
            sender.disruptions.append(clock())
            return True
        return report.queued > 0 or relayed.claimed > 0 or _due_soon(clock())


def _due_soon(now: datetime) -> bool:
    """Whether a pending row is due within the lease (a killed row comes back then)."""
    with ledger_session() as session:
        pending = (AlertOutbox.status == "pending") & (AlertOutbox.channel == "email")
        rows = session.scalars(select(AlertOutbox.next_attempt_at).where(pending)).all()
    return any(at <= now + DEFAULT_LEASE for at in rows)


def _assert_on_time(received: Received, due: datetime, sender: DyingSender) -> None:
    """Delivered at or after ``due``, within two minutes plus one lease for each kill or crash in between."""
    disruptions = sum(1 for at in sender.disruptions if due <= at <= received.at)
    assert received.at >= due, (received, due)
    slack = timedelta(minutes=2) + disruptions * (DEFAULT_LEASE + timedelta(minutes=1))
    assert received.at <= due + slack, (received, due, disruptions)


def _assert_sent_once_per_kill(sim: Simulation, sender: DyingSender) -> None:
    """Each key arrives once, plus once more for every kill after its delivery (the lease makes it due again)."""
    sent = Counter(m.key for m in sim.receiver.messages)
    for key, count in sent.items():
        assert count == 1 + sender.kills[key], (key, count, sender.kills[key])


@pytest.mark.parametrize("seed", [7, 2026])
def test_three_reminders_per_recipient_and_one_escalation_despite_kills(
    ledger_url: str, policy: UseCasePolicy, tmp_path: Path, seed: int
) -> None:
    incident_id = _raise_incident(policy, tmp_path)
    t0 = _detected_at(incident_id)
    deadline = t0 + timedelta(hours=72)
    sim = Simulation(policy, t0, seed)
    sender = sim.run()

    assert sum(sender.kills.values()) >= 2, "the seed must kill the relay during a send"
    assert sim.runs < 2000
    for h in THRESHOLDS:  # every minute around each threshold
        start = int((deadline - timedelta(hours=h) - t0).total_seconds() // 60)
        assert set(range(start - 5, start + 30)) <= sim.minute_runs
    reminders = sim.receiver.first("reminder")
    per_recipient = Counter(m.recipient for m in reminders.values())
    assert per_recipient == {OFFICER: 3, DPO: 3}
    for recipient in (OFFICER, DPO):
        steps = sorted(m.step or 0 for m in reminders.values() if m.recipient == recipient)
        assert steps == [6, 24, 48]
    for m in reminders.values():
        assert m.step is not None
        _assert_on_time(m, deadline - timedelta(hours=m.step), sender)
        assert f"Rappel : notification CNIL due dans {m.step} h" in m.subject
    escalations = sim.receiver.first("escalation")
    assert [(m.recipient, m.step) for m in escalations.values()] == [(ON_CALL, 1)]
    _assert_on_time(next(iter(escalations.values())), t0 + timedelta(hours=4), sender)
    assert "Escalade : incident non pris en compte depuis 4 h" in next(iter(escalations.values())).subject
    assert Counter(m.recipient for m in sim.receiver.first("alert").values()) == {OFFICER: 1, DPO: 1}
    _assert_sent_once_per_kill(sim, sender)
    rows = [r for r in _outbox() if r.channel == "email"]
    assert {r.status for r in rows} == {"delivered"}
    assert len(rows) == 2 + 6 + 1


def _set_art33(incident_id: int, decision: str) -> Callable[[], None]:
    def record() -> None:
        with ledger_session() as session:
            incident = session.get(Incident, incident_id)
            assert incident is not None
            incident.art33_decision = decision

    return record


def test_nothing_is_sent_after_the_art33_decision(ledger_url: str, policy: UseCasePolicy, tmp_path: Path) -> None:
    incident_id = _raise_incident(policy, tmp_path)
    t0 = _detected_at(incident_id)
    decided = timedelta(hours=30)
    sim = Simulation(policy, t0, seed=11, events={decided: _set_art33(incident_id, "notified")})
    sender = sim.run()

    decided_minute = int(decided.total_seconds() // 60)
    assert set(range(decided_minute - 5, decided_minute + 30)) <= sim.minute_runs
    reminders = sim.receiver.first("reminder")
    assert sorted((m.recipient, m.step) for m in reminders.values()) == [(DPO, 48), (OFFICER, 48)]
    assert [m for m in sim.receiver.messages if m.at >= t0 + decided] == []
    assert len(sim.receiver.first("escalation")) == 1  # before the decision, nobody had acknowledged
    _assert_sent_once_per_kill(sim, sender)
    assert {r.status for r in _outbox() if r.channel == "email"} == {"delivered"}


def test_an_incident_acknowledged_in_time_is_not_escalated(
    ledger_url: str, policy: UseCasePolicy, tmp_path: Path
) -> None:
    incident_id = _raise_incident(policy, tmp_path)
    t0 = _detected_at(incident_id)

    def acknowledge() -> None:
        with ledger_session() as session:
            transition_incident(session, incident_id, IncidentStatus.ACKNOWLEDGED, actor="rssi", comment="vu")

    sim = Simulation(policy, t0, seed=5, events={timedelta(hours=1): acknowledge})
    sender = sim.run()

    assert sim.receiver.first("escalation") == {}
    assert Counter(m.recipient for m in sim.receiver.first("reminder").values()) == {OFFICER: 3, DPO: 3}
    _assert_sent_once_per_kill(sim, sender)


def test_missed_thresholds_queue_only_the_latest_and_supersede_stale_pending_rows(
    ledger_url: str, policy: UseCasePolicy, tmp_path: Path
) -> None:
    incident_id = _raise_incident(policy, tmp_path)
    t0 = _detected_at(incident_id)
    policies = {policy.id: policy}

    before = queue_due_followups(now=t0 + timedelta(hours=23, minutes=59), policies=policies)
    assert (before.reminders, before.escalations) == (0, 1)  # the 4-hour escalation, queued late
    # relay down for a day: at 50 h the 48 h threshold is past and the 24 h one is due
    late = queue_due_followups(now=t0 + timedelta(hours=50), policies=policies)
    assert (late.queued, late.reminders, late.superseded) == (2, 2, 0)
    again = queue_due_followups(now=t0 + timedelta(hours=50, minutes=1), policies=policies)
    assert again.to_json_dict()["queued"] == 0
    reminders = [r for r in _outbox() if r.payload.get("kind") == "reminder"]
    assert sorted((r.recipient, r.payload["threshold_hours"]) for r in reminders) == [(DPO, 24), (OFFICER, 24)]
    # still undelivered when the 6 h threshold comes: the "due in 24 h" rows must not go out any more
    last = queue_due_followups(now=t0 + timedelta(hours=66), policies=policies)
    assert (last.reminders, last.superseded) == (2, 2)
    reminders = [r for r in _outbox() if r.payload.get("kind") == "reminder"]
    by_step = {(r.recipient, r.payload["threshold_hours"]): r.status for r in reminders}
    assert by_step == {(OFFICER, 24): SUPERSEDED, (DPO, 24): SUPERSEDED, (OFFICER, 6): "pending", (DPO, 6): "pending"}
    receiver = Receiver()
    sender = DyingSender(receiver, random.Random(0), lambda: t0 + timedelta(hours=66), p_kill=0.0)
    relay_once({"email": sender}, clock=lambda: t0 + timedelta(hours=66))
    assert sorted((m.kind, m.step) for m in receiver.messages if m.kind == "reminder") == [
        ("reminder", 6),
        ("reminder", 6),
    ]
    with ledger_session() as session:
        actions = Counter(session.scalars(select(AuditEvent.action)))
    assert actions["incident.reminder_queued"] == 2
    assert actions["incident.escalated"] == 1
    assert actions["alert.superseded"] == 2
    assert charter(["audit", "verify"]) == 0


def test_a_resolved_incident_gets_nothing_more(ledger_url: str, policy: UseCasePolicy, tmp_path: Path) -> None:
    incident_id = _raise_incident(policy, tmp_path)
    t0 = _detected_at(incident_id)
    policies = {policy.id: policy}
    assert queue_due_followups(now=t0 + timedelta(hours=25), policies=policies).queued == 3
    with ledger_session() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        incident.status = IncidentStatus.RESOLVED.value
    done = queue_due_followups(now=t0 + timedelta(hours=70), policies=policies)
    assert (done.queued, done.superseded) == (0, 3)
    assert {r.status for r in _outbox() if r.payload.get("kind")} == {SUPERSEDED}


def test_two_relays_at_once_queue_each_reminder_once(ledger_url: str, policy: UseCasePolicy, tmp_path: Path) -> None:
    incident_id = _raise_incident(policy, tmp_path)
    now = _detected_at(incident_id) + timedelta(hours=25)
    barrier = threading.Barrier(2)
    reports: list[FollowupReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            reports.append(queue_due_followups(now=now, policies={policy.id: policy}))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(r.queued for r in reports) == 3  # two reminders at 48 h, one escalation
    keys = Counter(r.idempotency_key for r in _outbox())
    assert max(keys.values()) == 1
    assert len(keys) == 2 + 3


def test_an_incident_whose_policy_cannot_be_loaded_is_skipped_with_a_warning(
    ledger_url: str, policy: UseCasePolicy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    caplog.set_level(logging.WARNING)
    incident_id = _raise_incident(policy, tmp_path)
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(tmp_path / "no-policies"))
    (tmp_path / "no-policies").mkdir()
    report = queue_due_followups(now=_detected_at(incident_id) + timedelta(hours=30))
    assert report.queued == 0
    assert report.skipped_use_cases == ["citizen_requests"]
    assert f"incident #{incident_id}" in caplog.text
    assert "citizen_requests" in caplog.text


def _alert(incident_id: int, kind: str) -> Alert:
    [row] = [r for r in _outbox() if r.payload.get("kind") == kind and r.recipient in {OFFICER, ON_CALL}]
    return Alert(row.id, incident_id, "email", row.recipient, row.idempotency_key, dict(row.payload), 1)


def _parts(message: EmailMessage) -> tuple[str, str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    page = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    return str(message["Subject"]), text, page


def test_reminder_and_escalation_messages_say_what_they_are_and_link_to_the_incident(
    ledger_url: str, policy: UseCasePolicy, tmp_path: Path
) -> None:
    incident_id = _raise_incident(policy, tmp_path)
    t0 = _detected_at(incident_id)
    queue_due_followups(now=t0 + timedelta(hours=48, minutes=3), policies={policy.id: policy})
    link = f"{UI}/charte/incidents/{incident_id}"
    expected = {
        "reminder": ("Rappel : notification CNIL due dans 24 h", "est due dans 24 h"),
        "escalation": ("Escalade : incident non pris en compte depuis 4 h", "pas été pris en compte depuis 4 h"),
    }
    for kind, (in_subject, in_body) in expected.items():
        alert = _alert(incident_id, kind)
        message = email_message(alert, sender="charte@example.org")
        subject, text, page = _parts(message)
        assert in_subject in subject
        assert f"Incident n°{incident_id}" in subject
        for body in (text, html.unescape(page)):
            assert in_body in body
            assert link in body
            assert f"{link}#acquitter" in body
            assert "Notification à la CNIL avant" in body  # the Art. 33 fields are still there
        assert f'href="{link}#acquitter"' in page
        assert not any(v in message.as_string() + html.unescape(page) + text for v in PERSONAL_VALUES)
        hook = webhook_body(alert)
        assert (hook["kind"], hook["link"], hook["ack_link"]) == (kind, link, f"{link}#acquitter")
        assert hook["incident"]["notify_deadline"] == alert.payload["notify_deadline"]
        assert not any(v in str(hook) for v in PERSONAL_VALUES)
    first = Alert(1, incident_id, "email", OFFICER, "k", {"incident_id": incident_id, "title": "t"}, 1)
    assert webhook_body(first)["kind"] == "alert"
    assert webhook_body(first)["event"] == "incident.raised"
    assert f"{link}#acquitter" in email_message(first, sender="c@example.org").as_string()
