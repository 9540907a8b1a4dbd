"""Signed webhooks and chat rooms (Matrix/Tchap, Teams, Mattermost), named by Airflow connection.

Each service is a real HTTP server on loopback, started by the test, that checks the request the real
service would get (method, path, headers, JSON body). Connections are ``AIRFLOW_CONN_*`` variables read by
the command line's resolver; the ledger is real (SQLite and PostgreSQL). Time is simulated: a two-hour
outage runs in seconds.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from charter_guardrails.core.policy_incidents import AlertDestination, DestinationKind
from charter_guardrails.incidents.chat import chat_text
from charter_guardrails.incidents.connections import (
    ConnectionInvalid,
    ConnectionNotFound,
    env_connection,
    http_url,
    parse_connection_uri,
)
from charter_guardrails.incidents.incident import BreachType, IncidentDraft, raise_incident
from charter_guardrails.incidents.messages import IDEMPOTENCY_HEADER, Alert
from charter_guardrails.incidents.relay import DEFAULT_LEASE, Backoff, relay_once
from charter_guardrails.incidents.senders import default_senders
from charter_guardrails.incidents.targets import alert_targets
from charter_guardrails.ledger.models import AlertOutbox, AuditEvent
from charter_guardrails.ledger.store import ledger_session
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

PERSONAL_VALUES = ["Jeanne Dupont", "jeanne.dupont@example.fr", "06 12 34 56 78"]
MATRIX_TOKEN = "syt_Y2hhcnRl_matrixAccessToken_4242"
MATRIX_ROOM = "!incidents:tchap.example"
MATTERMOST_KEY = "mmhookkey7f3a9c2e1b"
TEAMS_SIG = "teamsSig-Qx7Kp2"
CHAT = ("matrix", "teams", "mattermost")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server on loopback: records every request; answers ``status`` (503 during an outage).

    Like a Matrix homeserver, a repeated ``PUT …/send/m.room.message/{txnId}`` is answered with the event of the
    first one instead of posting a second message.
    """

    def __init__(self, *, listening: bool = True) -> None:
        self.port = free_port()
        self.status = 200
        self.requests: list[Request] = []
        self.events: dict[str, str] = {}
        self.server: ThreadingHTTPServer | None = None
        if listening:
            self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(Request(self.command, self.path, dict(self.headers), body))
                answer = b"{}"
                if receiver.status == 200 and self.command == "PUT":
                    txn = self.path.rsplit("/", 1)[-1]
                    event = receiver.events.setdefault(txn, f"$event{len(receiver.events)}")
                    answer = json.dumps({"event_id": event}).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class Services:
    """Two signed webhooks, a Matrix room, a Teams channel and a Mattermost channel, each on its own server."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, listening: bool = True) -> None:
        self.receivers = {
            name: Receiver(listening=listening) for name in ("siem", "soc", "matrix", "teams", "mattermost")
        }
        self.secrets = {"siem": new_secret(), "soc": new_secret()}
        r = self.receivers
        connections = {
            # URI form: the secret as the password, the path in the extra.
            "alerts_siem": (
                f"http://:{self.secrets['siem'].replace('/', '%2F').replace('+', '%2B')}@127.0.0.1:{r['siem'].port}"
                "/http?path=%2Fcharter%2Falerts"
            ),
            # JSON form: the URL in the extra.
            "alerts_soc": json.dumps(
                {"conn_type": "http", "password": self.secrets["soc"], "extra": {"url": f"{r['soc'].url}/hooks/soc"}}
            ),
            "tchap_incidents": json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": r["matrix"].port,
                    "schema": "http",
                    "password": MATRIX_TOKEN,
                    "extra": {"room_id": MATRIX_ROOM},
                }
            ),
            "teams_rssi": json.dumps(
                {
                    "conn_type": "http",
                    "extra": {
                        "url": f"{r['teams'].url}/workflows/abc123/triggers/manual/paths/invoke"
                        f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={TEAMS_SIG}"
                    },
                }
            ),
            "mattermost_secu": json.dumps(
                {"conn_type": "http", "extra": {"url": f"{r['mattermost'].url}/hooks/{MATTERMOST_KEY}"}}
            ),
        }
        for conn_id, value in connections.items():
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        self.connection_values = connections
        self.destinations = [
            AlertDestination(kind=DestinationKind.WEBHOOK, conn_id="alerts_siem"),
            AlertDestination(kind=DestinationKind.WEBHOOK, conn_id="alerts_soc"),
            AlertDestination(kind=DestinationKind.MATRIX, conn_id="tchap_incidents"),
            AlertDestination(kind=DestinationKind.TEAMS, conn_id="teams_rssi"),
            AlertDestination(kind=DestinationKind.MATTERMOST, conn_id="mattermost_secu"),
        ]
        self.receiver_of = {
            "alerts_siem": "siem",
            "alerts_soc": "soc",
            "tchap_incidents": "matrix",
            "teams_rssi": "teams",
            "mattermost_secu": "mattermost",
        }

    def forbidden(self) -> list[str]:
        """What must never be stored or logged: addresses, secrets, tokens, keys and the connection values."""
        values = [
            *self.secrets.values(),
            *(s.removeprefix("whsec_") for s in self.secrets.values()),
            MATRIX_TOKEN,
            MATTERMOST_KEY,
            TEAMS_SIG,
            "127.0.0.1",
            "http://",
            *self.connection_values.values(),
        ]
        return values + [str(r.port) for r in self.receivers.values()]

    def close(self) -> None:
        for receiver in self.receivers.values():
            receiver.stop()


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch):
    s = Services(monkeypatch)
    yield s
    s.close()


def _policy(policies: dict[str, Any], destinations: list[AlertDestination]) -> Any:
    policy = policies["citizen_requests"]
    return policy.model_copy(update={"incidents": policy.incidents.model_copy(update={"destinations": destinations})})


def _raise(policy: Any, n: int) -> None:
    with ledger_session() as session:
        for run in range(n):
            draft = IncidentDraft(
                breach_type=BreachType.INTEGRITY,
                severity="critical",
                dataset="training",
                run_id=f"scheduled__2026-11-28T0{run}:00:00+00:00",
                title="Corruption détectée sur citizen_requests.training (data_changed)",
                nature="Le fichier ne correspond plus à son manifeste signé.",
                facts={"outcome": "data_changed", "changed_chunks": [3]},
                likely_consequences="Un modèle entraîné sur des données altérées.",
                measures_taken=["actualisation bloquée"],
                approx_records=4000,
            )
            _, created = raise_incident(session, policy, draft)
            assert created


def _rows(channel: str | None = None) -> list[AlertOutbox]:
    with ledger_session() as session:
        query = select(AlertOutbox).order_by(AlertOutbox.id)
        if channel:
            query = query.where(AlertOutbox.channel == channel)
        return list(session.scalars(query))


def _check_request(services: Services, conn_id: str, request: Request, row: AlertOutbox) -> str:
    """The request the real service would get for ``row``; returns the idempotency key it carries."""
    name = services.receiver_of[conn_id]
    text = request.body.decode()
    assert not any(v in text for v in PERSONAL_VALUES)
    if name in services.secrets:
        assert request.method == "POST"
        assert request.path == {"siem": "/charter/alerts", "soc": "/hooks/soc"}[name]
        assert request.headers["Content-Type"] == "application/json"
        body = Webhook(services.secrets[name]).verify(request.body, request.headers)
        assert body["incident"]["title"].startswith("Corruption détectée")
        assert request.headers["webhook-id"] == body["idempotency_key"] == row.idempotency_key
        return request.headers["webhook-id"]
    if name == "matrix":
        prefix = "/_matrix/client/v3/rooms/%21incidents%3Atchap.example/send/m.room.message/"
        assert request.method == "PUT"
        assert request.path.startswith(prefix)
        assert request.headers["Authorization"] == f"Bearer {MATRIX_TOKEN}"
        body = json.loads(request.body)
        assert body["msgtype"] == "m.text"
        assert "Notification à la CNIL avant le" in body["body"]
        assert "Type : atteinte à l'intégrité" in body["body"]
        return request.path.removeprefix(prefix)
    if name == "teams":
        assert request.method == "POST"
        assert request.path.startswith("/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&")
        assert f"sig={TEAMS_SIG}" in request.path
        body = json.loads(request.body)
        assert body["type"] == "message"
        (attachment,) = body["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard"
        assert any("Incident n°" in block["text"] for block in card["body"])
        assert card["body"][-1]["text"] == f"Réf. {request.headers[IDEMPOTENCY_HEADER]}"
        return request.headers[IDEMPOTENCY_HEADER]
    assert name == "mattermost"
    assert request.method == "POST"
    assert request.path == f"/hooks/{MATTERMOST_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert "Incident n°" in body["text"]
    assert "Gravité : " in body["text"]
    return body["text"].rsplit("Réf. ", 1)[1].strip()


def _delivered_keys(services: Services, up_since: int = 0) -> dict[str, list[str]]:
    """The idempotency key of every request each service answered 200 to (from the ``up_since``-th request)."""
    keys: dict[str, list[str]] = {}
    rows = {r.idempotency_key: r for r in _rows()}
    for conn_id, name in services.receiver_of.items():
        keys[conn_id] = []
        for request in services.receivers[name].requests[up_since:]:
            row_key = _key_of(services, conn_id, request)
            keys[conn_id].append(_check_request(services, conn_id, request, rows[row_key]))
    return keys


def _key_of(services: Services, conn_id: str, request: Request) -> str:
    name = services.receiver_of[conn_id]
    if name == "matrix":
        return request.path.rsplit("/", 1)[1]
    if name == "mattermost":
        return json.loads(request.body)["text"].rsplit("Réf. ", 1)[1].strip()
    return request.headers[IDEMPOTENCY_HEADER]


def test_alert_targets_name_the_connections(policies, services: Services) -> None:
    siem = AlertDestination(kind=DestinationKind.SYSLOG, conn_id="siem_tls")  # ECS events, queued by incidents.siem
    policy = _policy(policies, [*services.destinations, siem, services.destinations[0]])
    assert alert_targets(policy) == [
        ("email", "rssi@ampmetropole.example"),
        ("email", "dpo@ampmetropole.example"),
        ("webhook", "alerts_siem"),
        ("webhook", "alerts_soc"),
        ("matrix", "tchap_incidents"),
        ("teams", "teams_rssi"),
        ("mattermost", "mattermost_secu"),
    ]


def test_every_service_gets_each_alert_once_and_a_redelivery_keeps_its_key(
    ledger_url: str, policies, services: Services
) -> None:
    _raise(_policy(policies, services.destinations), 2)
    rows = [r for r in _rows() if r.channel != "email"]
    assert sorted((r.channel, r.recipient) for r in rows) == sorted(
        (d.kind.value, d.conn_id) for d in services.destinations for _ in range(2)
    )
    senders = default_senders()
    report = relay_once(senders)
    assert report.delivered == len(rows) == 10, report.errors
    keys = _delivered_keys(services)
    for conn_id, received in keys.items():
        expected = {r.idempotency_key for r in rows if r.recipient == conn_id}
        assert sorted(received) == sorted(expected), conn_id  # each alert once

    # A relay that crashed between sending and recording left its rows as the claim wrote them: pending,
    # hidden for the lease. Once the lease is over the next relay sends them again.
    claimed_at = datetime.now(UTC)
    with ledger_session() as session:
        for row in session.scalars(select(AlertOutbox).where(AlertOutbox.channel != "email")):
            row.status, row.delivered_at, row.attempts = "pending", None, 0
            row.next_attempt_at = claimed_at + DEFAULT_LEASE
    assert relay_once(senders, clock=lambda: claimed_at + timedelta(minutes=1)).claimed == 0
    assert relay_once(senders, clock=lambda: claimed_at + DEFAULT_LEASE + timedelta(minutes=1)).delivered == 10
    again = _delivered_keys(services)
    for conn_id, received in again.items():
        assert len(received) == 4, conn_id  # the service is reached again ...
        assert len(set(received)) == 2, conn_id  # ... with the same keys
        assert set(received) == set(keys[conn_id])
    matrix = services.receivers["matrix"]
    assert len(matrix.requests) == 4
    assert len(matrix.events) == 2  # the homeserver posted each alert once: same txnId, same event


def test_webhook_signature_holds_and_one_changed_byte_breaks_it(ledger_url: str, policies, services: Services) -> None:
    _raise(_policy(policies, services.destinations[:2]), 1)
    relay_once(default_senders())
    for name in ("siem", "soc"):
        (request,) = services.receivers[name].requests
        webhook = Webhook(services.secrets[name])
        assert webhook.verify(request.body, request.headers)["event"] == "incident.raised"
        for position in (0, len(request.body) // 2, len(request.body) - 1):
            changed = bytearray(request.body)
            changed[position] ^= 0x01
            with pytest.raises(WebhookVerificationError):
                webhook.verify(bytes(changed), request.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(services.secrets["soc" if name == "siem" else "siem"]).verify(request.body, request.headers)
        assert request.headers["webhook-signature"].startswith("v1,")
        assert abs(int(request.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60


def test_default_backoff_covers_a_two_hour_outage() -> None:
    backoff = Backoff()
    waited, attempts = timedelta(0), 0
    while waited <= timedelta(hours=2):
        attempts += 1
        waited += backoff.delay(attempts)
    assert attempts < backoff.max_attempts, (attempts, backoff.max_attempts)


@pytest.mark.parametrize("outage", ["503", "not listening"])
def test_two_hour_outage_every_alert_delivered_after_none_dead_nothing_secret_stored(
    ledger_url: str, policies, monkeypatch: pytest.MonkeyPatch, caplog, outage: str
) -> None:
    services = Services(monkeypatch, listening=outage == "503")
    try:
        for receiver in services.receivers.values():
            receiver.status = 503
        _raise(_policy(policies, services.destinations), 2)
        rows = [r for r in _rows() if r.channel != "email"]
        senders = default_senders()
        backoff = Backoff()
        caplog.set_level(logging.DEBUG)
        t0 = datetime.now(UTC)
        for minute in range(181):  # 3 h of simulated time, one relay pass per simulated minute
            if minute == 120:  # the services come back after two hours
                for receiver in services.receivers.values():
                    receiver.status = 200
                    if receiver.server is None:
                        receiver.start()
            relay_once(senders, clock=lambda at=t0 + timedelta(minutes=minute): at, backoff=backoff)
        after = {r.id: r for r in _rows()}
        for row in rows:
            done = after[row.id]
            assert done.status == "delivered", (done.channel, done.recipient, done.attempts, done.last_error)
            assert done.delivered_at is not None
            assert done.delivered_at >= t0 + timedelta(minutes=120)
            assert 6 <= done.attempts <= 14, done.attempts  # backed off, not given up
        counts = {name: len(receiver.requests) for name, receiver in services.receivers.items()}
        if outage == "503":  # each of the 2 alerts was tried at least 6 times before the services came back
            assert all(n >= 2 * 7 for n in counts.values()), counts
        else:  # nothing was listening: only the deliveries reached a service
            assert set(counts.values()) == {2}, counts
        for conn_id, received in _delivered_keys(services).items():
            assert set(received) == {r.idempotency_key for r in rows if r.recipient == conn_id}, conn_id

        # What the ledger and the logs hold: the connection id, never the address or the secret.
        with ledger_session() as session:
            stored = [
                json.dumps(
                    [r.channel, r.recipient, r.payload, r.last_error, r.idempotency_key],
                    ensure_ascii=False,
                    default=str,
                )
                for r in session.scalars(select(AlertOutbox))
            ]
            stored += [
                json.dumps([e.action, e.payload], ensure_ascii=False, default=str)
                for e in session.scalars(select(AuditEvent))
            ]
        assert {r.recipient for r in rows} == {d.conn_id for d in services.destinations}
        for value in services.forbidden():
            assert not any(value in text for text in stored), value
            assert value not in caplog.text, value
        errors = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
        assert errors
        assert all("(connection " in e for e in errors), errors[:3]
    finally:
        services.close()


def test_a_missing_connection_leaves_the_alert_pending_and_is_named(
    ledger_url: str, policies, monkeypatch: pytest.MonkeyPatch
) -> None:
    destinations = [AlertDestination(kind=DestinationKind.WEBHOOK, conn_id="alerts_nowhere")]
    monkeypatch.delenv("AIRFLOW_CONN_ALERTS_NOWHERE", raising=False)
    _raise(_policy(policies, destinations), 1)
    report = relay_once(default_senders())
    assert report.delivered == 0
    assert report.failed == 1
    (row,) = _rows("webhook")
    assert row.status == "pending"
    assert row.recipient == "alerts_nowhere"
    with pytest.raises(ConnectionNotFound) as missing:
        default_senders()["webhook"].send(
            Alert(row.id, row.incident_id, row.channel, row.recipient, row.idempotency_key, row.payload, 1)
        )
    message = str(missing.value)
    assert "'alerts_nowhere'" in message
    assert "airflow connections add alerts_nowhere" in message
    assert "AIRFLOW_CONN_ALERTS_NOWHERE" in message


AIRFLOW_URIS = [
    "http://:whsec_a%2Bb%2Fc%3D@hooks.example:8443/https?path=%2Fcharter",
    "http://relay:p%40ss%3Aword@10.0.0.5/http",
    "http://https://hooks.example/?url=https%3A%2F%2Fhooks.example%2Fx",
    "mattermost://chat.example:8065/?__extra__=%7B%22url%22%3A+%22https%3A%2F%2Fchat.example%2Fhooks%2Fk%22%7D",
    "http://hooks.example",
    "my-type://user@host.example:1234/schema",
]


@pytest.mark.parametrize("uri", AIRFLOW_URIS)
def test_the_cli_resolver_reads_airflow_uris_as_airflow_does(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Connection

    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_X", uri)
    ours = env_connection("alerts_x")
    theirs = Connection.from_uri(uri, conn_id="alerts_x")
    assert (ours.conn_type, ours.host, ours.schema, ours.port, ours.login, ours.password) == (
        theirs.conn_type,
        theirs.host or None,
        theirs.schema or None,
        theirs.port,
        theirs.login or None,
        theirs.password or None,
    )
    assert ours.extra == theirs.extra_dejson
    assert "whsec_" not in repr(ours)
    assert "p@ss" not in repr(ours)


def test_the_cli_resolver_reads_the_json_form_and_builds_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_JSON",
        json.dumps(
            {
                "conn_type": "http",
                "host": "siem.example",
                "schema": "https",
                "port": "8443",
                "password": "whsec_x",
                "extra": {"path": "/charter"},
            }
        ),
    )
    info = env_connection("alerts_json")
    assert (info.host, info.port, info.password, info.extra) == ("siem.example", 8443, "whsec_x", {"path": "/charter"})
    assert http_url(info) == "https://siem.example:8443/charter"
    assert http_url(parse_connection_uri("a", "http://hooks.example:8080/http")) == "http://hooks.example:8080"
    assert http_url(parse_connection_uri("a", "http://hooks.example")) == "https://hooks.example"
    assert http_url(parse_connection_uri("a", "http://https://hooks.example/x")) == "https://hooks.example"


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        ('{"conn_type": "http", "password": "hunter2-secret", "port": "eighty"}', "port"),
        ('{"conn_type": "http", "password": "hunter2-secret", "extra": "[1]"}', "extra"),
        ('{"conn_type": "http", "password": "hunter2-secret"', "JSON object"),
        ("http://user:hunter2-secret@host:notaport/https", "percent-encode"),
        ("not a uri hunter2-secret", "URI"),
    ],
)
def test_a_malformed_connection_says_what_to_fix_and_never_quotes_it(
    value: str, fix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_BAD", value)
    with pytest.raises(ConnectionInvalid) as bad:
        env_connection("alerts_bad")
    assert "'alerts_bad'" in str(bad.value)
    assert fix in str(bad.value)
    assert "hunter2" not in str(bad.value)


def test_the_airflow_resolver_reads_airflow_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    from charter_airflow.connections import airflow_connection

    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_AF",
        json.dumps({"conn_type": "http", "host": "hooks.example", "password": "whsec_abc", "extra": {"path": "/a"}}),
    )
    info = airflow_connection("alerts_af")
    assert (info.conn_id, info.host, info.password, info.extra) == (
        "alerts_af",
        "hooks.example",
        "whsec_abc",
        {"path": "/a"},
    )
    monkeypatch.delenv("AIRFLOW_CONN_ALERTS_MISSING", raising=False)
    with pytest.raises(ConnectionNotFound, match="airflow connections add alerts_missing"):
        airflow_connection("alerts_missing")


def test_chat_text_is_short_french_and_carries_the_link() -> None:
    payload = {
        "incident_id": 12,
        "title": "Données personnelles non déclarées dans citizen_requests.training",
        "breach_type": "confidentiality",
        "severity": "high",
        "notify_deadline": "2026-12-06T09:30:00+00:00",
        "link": "https://charte.example/incidents/12",
        "dpo_contact": "DPO <dpo@ampmetropole.example>",
    }
    text = chat_text(Alert(1, 12, "matrix", "tchap_incidents", "k" * 40, payload, 1))
    assert text.splitlines() == [
        "[Charte IA – Sûreté]",
        "Incident n°12 : Données personnelles non déclarées dans citizen_requests.training",
        "Type : atteinte à la confidentialité",
        "Gravité : élevée",
        "Notification à la CNIL avant le 06/12/2026 à 09:30 UTC (art. 33 RGPD)",
        "Détails : https://charte.example/incidents/12",
        f"Réf. {'k' * 40}",
    ]
