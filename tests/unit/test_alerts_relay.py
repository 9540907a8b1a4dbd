"""The alert relay against a real SMTP server (aiosmtpd) and a real HTTP server on loopback, on
SQLite and PostgreSQL. Time is simulated: a two-and-a-half-hour outage runs in seconds."""

from __future__ import annotations

import base64
import email
import json
import logging
import socket
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from charter_guardrails.checks.integrity.manifest import build_manifest, sign_manifest
from charter_guardrails.checks.integrity.verification import ManifestSnapshot, verify_file
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.policy_incidents import AlertDestination, DestinationKind
from charter_guardrails.incidents.connections import ConnectionInfo
from charter_guardrails.incidents.incident import raise_incident
from charter_guardrails.incidents.messages import IDEMPOTENCY_HEADER
from charter_guardrails.incidents.relay import Backoff, relay, relay_once
from charter_guardrails.incidents.senders import SmtpSender, SmtpSettings, WebhookSender, default_senders
from charter_guardrails.ledger.models import AlertOutbox, AuditEvent
from charter_guardrails.ledger.store import ledger_session
from sqlalchemy import select

PERSONAL_VALUES = ["Jeanne Dupont", "jeanne.dupont@example.fr", "06 12 34 56 78"]
PASSWORD = "s3cr3t-Pa55word!"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"charter-relay-test-signing-key-32").decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """An aiosmtpd handler that refuses the first ``refuse`` messages with 421 and keeps the others."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.messages: list[email.message.EmailMessage] = []
        self.refused = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refused < self.refuse:
            self.refused += 1
            return "421 4.3.2 service not available, try again later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
        return "250 OK"


class Hooks:
    """A real HTTP server on loopback that answers 503 to the first ``fail`` POSTs."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.failed = 0
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hooks.failed < hooks.fail:
                    hooks.failed += 1
                    self.send_response(503)
                else:
                    hooks.received.append((dict(self.headers), json.loads(body)))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/charter-alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    server = Hooks(fail=4)
    yield server
    server.close()


def _incidents(policies: dict, tmp_path: Path, n: int) -> list[int]:
    """Real integrity incidents: a CSV holding personal values is registered, corrupted and verified."""
    path = tmp_path / "requests.csv"
    path.write_text(
        "id;message\n"
        + "".join(f"{i};Rappeler {PERSONAL_VALUES[i % 3]} au sujet du dossier {i}\n" for i in range(300)),
        encoding="utf-8",
    )
    signed = sign_manifest(build_manifest(path, use_case="citizen_requests", dataset="training", chunk_size=1024))
    snapshot = ManifestSnapshot(
        1,
        1,
        signed.document,
        signed.signature,
        signed.key_id,
        signed.document["merkle_root"],
        signed.document["size_bytes"],
        signed.document["row_count"],
    )
    data = bytearray(path.read_bytes())
    data[2000] ^= 0x04
    path.write_bytes(bytes(data))
    verification = verify_file(path, snapshot, use_case="citizen_requests", dataset="training")
    assert verification.outcome.value == "data_changed"
    ids = []
    with ledger_session() as session:
        for run in range(n):
            draft = verification.incident_draft(f"scheduled__2026-11-28T0{run}:00:00+00:00")
            assert draft is not None
            incident, created = raise_incident(session, policies["citizen_requests"], draft)
            assert created
            ids.append(incident.id)
    return ids


def with_webhook(policies: dict, monkeypatch: pytest.MonkeyPatch, url: str) -> dict:
    """The policies, with ``citizen_requests`` alerting a signed webhook at ``url`` through the connection
    ``alerts_webhook`` (an ``AIRFLOW_CONN_*`` variable, as ``charter alerts relay`` reads it)."""
    policy = policies["citizen_requests"]
    destination = AlertDestination(kind=DestinationKind.WEBHOOK, conn_id="alerts_webhook")
    incidents = policy.incidents.model_copy(update={"destinations": [destination]})
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_WEBHOOK",
        json.dumps({"conn_type": "http", "password": WEBHOOK_SECRET, "extra": {"url": url}}),
    )
    return {**policies, "citizen_requests": policy.model_copy(update={"incidents": incidents})}


def policies_with_webhook(folder: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> Path:
    """A copy of the policies folder in ``folder`` where every policy alerts the signed webhook at ``url`` (the
    connection ``alerts_webhook``), made the policies folder (``CHARTER_POLICIES_DIR``) of the test."""
    import shutil

    import yaml
    from charter_guardrails.core.settings import get_settings

    shutil.copytree(get_settings().policies_dir, folder)
    for path in folder.glob("*.yaml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        document.setdefault("incidents", {})["destinations"] = [{"kind": "webhook", "conn_id": "alerts_webhook"}]
        path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(folder))
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_WEBHOOK",
        json.dumps({"conn_type": "http", "password": WEBHOOK_SECRET, "extra": {"url": url}}),
    )
    return folder


def _outbox() -> list[AlertOutbox]:
    with ledger_session() as session:
        return list(session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)))


def test_outage_of_two_hours_every_alert_delivered_once_with_its_key(
    ledger_url: str, policies, tmp_path: Path, monkeypatch, hooks: Hooks, caplog
) -> None:
    incident_ids = _incidents(with_webhook(policies, monkeypatch, hooks.url), tmp_path, 3)
    rows = _outbox()
    assert len(rows) == 3 * 3
    assert Counter(r.channel for r in rows) == {"email": 6, "webhook": 3}
    port = free_port()
    monkeypatch.setenv("CHARTER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CHARTER_SMTP_PORT", str(port))
    senders = default_senders()
    assert set(senders) == {"email", "webhook", "matrix", "teams", "mattermost", "syslog"}
    t0 = datetime.now(UTC)
    clock = {"now": t0}
    mailbox = Mailbox(refuse=3)
    controller = None
    caplog.set_level(logging.WARNING)
    try:
        minute = 0
        while minute <= 180:  # 3 h of simulated time, one relay pass per simulated minute
            clock["now"] = t0 + timedelta(minutes=minute)
            if (
                minute == 120 and controller is None
            ):  # the SMTP server comes back after two hours, refusing a few more first
                controller = Controller(mailbox, hostname="127.0.0.1", port=port)
                controller.start()
            relay_once(senders, clock=lambda: clock["now"])
            minute += 1
    finally:
        if controller is not None:
            controller.stop()
    rows = _outbox()
    assert {r.status for r in rows} == {"delivered"}, [(r.channel, r.status, r.attempts, r.last_error) for r in rows]
    for row in rows:
        if row.channel == "email":
            assert row.delivered_at is not None
            assert row.delivered_at >= t0 + timedelta(minutes=120)
            assert 6 <= row.attempts <= 14, row.attempts  # exponential backoff: not every minute, not given up
        assert row.last_error is None
    keys = {r.idempotency_key: r for r in rows}

    received = Counter(m[IDEMPOTENCY_HEADER] for m in mailbox.messages)
    assert set(received) == {r.idempotency_key for r in rows if r.channel == "email"}
    assert max(received.values()) <= 2  # at least once, at most one duplicate
    for message in mailbox.messages:
        row = keys[message[IDEMPOTENCY_HEADER]]
        assert message["Message-ID"] == f"<{row.idempotency_key}@charter-guardrails>"
        assert message["To"] == row.recipient
        assert message["Subject"].startswith("[Charte IA – Sûreté] Incident n°")
        body = message.get_body(preferencelist=("plain",)).get_content()
        assert "Notification à la CNIL avant" in body
        assert "Mesures prises" in body
        assert "lignes de données" in body
        assert not any(v in message.as_string() for v in PERSONAL_VALUES)
    assert {int(m["X-Charter-Incident"]) for m in mailbox.messages} == set(incident_ids)

    hook_keys = Counter(headers[IDEMPOTENCY_HEADER] for headers, _ in hooks.received)
    assert set(hook_keys) == {r.idempotency_key for r in rows if r.channel == "webhook"}
    assert max(hook_keys.values()) <= 2
    for headers, body in hooks.received:
        assert body["idempotency_key"] == headers[IDEMPOTENCY_HEADER]
        assert body["incident"]["breach_type"] == "integrity"
        assert body["incident"]["notify_deadline"]
        assert body["incident"]["dpo_contact"]
        assert not any(v in json.dumps(body, ensure_ascii=False) for v in PERSONAL_VALUES)
    with ledger_session() as session:
        delivered_events = session.scalars(select(AuditEvent).where(AuditEvent.action == "alert.delivered")).all()
    assert len(delivered_events) == len(rows)
    assert charter(["audit", "verify"]) == 0


def test_two_relays_at_once_never_send_an_alert_twice(ledger_url: str, policies, tmp_path: Path) -> None:
    _incidents(policies, tmp_path, 4)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        sender = SmtpSender(SmtpSettings(host="127.0.0.1", port=controller.port))
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                barrier.wait()
                relay({"email": sender}, batch_size=3)
            except BaseException as exc:  # noqa: BLE001 - surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        controller.stop()
    assert errors == []
    assert Counter(m[IDEMPOTENCY_HEADER] for m in mailbox.messages) == Counter(
        {r.idempotency_key: 1 for r in _outbox()}
    )
    assert {r.status for r in _outbox()} == {"delivered"}


def test_failures_back_off_then_die_and_never_leak_the_password(
    ledger_url: str, policies, tmp_path: Path, caplog
) -> None:
    _incidents(policies, tmp_path, 1)
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), user="relay", password=PASSWORD)
    assert PASSWORD not in repr(settings)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=settings.port)  # no AUTH offered: login fails
    controller.start()
    caplog.set_level(logging.DEBUG)
    t0 = datetime.now(UTC)
    backoff = Backoff(base=timedelta(seconds=30), max_attempts=4)
    try:
        now = t0
        schedule = []
        for _ in range(4):
            report = relay_once({"email": SmtpSender(settings)}, clock=lambda at=now: at, backoff=backoff)
            assert report.claimed == 2
            assert report.delivered == 0
            row = _outbox()[0]
            schedule.append(row.next_attempt_at - now)
            now = row.next_attempt_at
        assert relay_once({"email": SmtpSender(settings)}, clock=lambda: now + timedelta(days=1)).claimed == 0
    finally:
        controller.stop()
    assert schedule[:3] == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    rows = _outbox()
    assert {r.status for r in rows} == {"dead"}
    assert {r.attempts for r in rows} == {4}
    assert all(r.last_error and "SMTP 127.0.0.1" in r.last_error for r in rows)
    assert mailbox.messages == []
    assert not any(PASSWORD in (r.last_error or "") for r in rows)
    assert PASSWORD not in caplog.text
    with ledger_session() as session:
        assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "alert.dead")).all()) == 2


def test_cli_relay_leaves_email_pending_without_smtp_settings(
    ledger_url: str, policies, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.delenv("CHARTER_SMTP_HOST", raising=False)
    _incidents(policies, tmp_path, 1)
    assert charter(["alerts", "relay", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["claimed"] == 0
    assert report["unsent_channels"] == {"email": 2}
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        monkeypatch.setenv("CHARTER_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CHARTER_SMTP_PORT", str(controller.port))
        assert charter(["alerts", "relay", "--once"]) == 0
    finally:
        controller.stop()
    assert "2 delivered" in capsys.readouterr().out
    assert len(mailbox.messages) == 2
    assert charter(["alerts", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"delivered": 2}


def test_webhook_sender_posts_json_with_the_key(hooks: Hooks) -> None:
    from charter_guardrails.incidents.messages import Alert

    hooks.fail = 0
    alert = Alert(
        1, 7, "webhook", "alerts_webhook", "k" * 40, {"incident_id": 7, "breach_type": "integrity", "title": "t"}, 1
    )
    WebhookSender(lambda conn_id: ConnectionInfo(conn_id, password=WEBHOOK_SECRET, extra={"url": hooks.url})).send(
        alert
    )
    headers, body = hooks.received[0]
    assert headers["webhook-id"] == "k" * 40
    assert headers[IDEMPOTENCY_HEADER] == "k" * 40
    assert body["idempotency_key"] == "k" * 40
    assert body["incident"]["incident_id"] == 7
