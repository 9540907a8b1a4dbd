"""The SIEM export of incidents: ECS events from the audit chain, RFC 5424 syslog over UDP, TCP (octet
counting) and TLS to real receivers on loopback, queued outbox rows delivered through a simulated outage,
and ``charter incidents export``; on SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import socketserver
import ssl
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.errors import ConfigError, DeliveryError
from charter_guardrails.core.policy_incidents import AlertDestination
from charter_guardrails.incidents.decisions import record_art33
from charter_guardrails.incidents.incident import BreachType, IncidentDraft, IncidentStatus, raise_incident
from charter_guardrails.incidents.incident import transition_incident as transition
from charter_guardrails.incidents.messages import Alert
from charter_guardrails.incidents.relay import Backoff, relay_once
from charter_guardrails.incidents.siem import audit_event_id, ecs_event, incident_events, queue_siem_events
from charter_guardrails.incidents.syslog import (
    SyslogRouter,
    SyslogSender,
    escape_param_value,
    format_message,
    octet_counted,
)
from charter_guardrails.ledger.models import AlertOutbox, AuditEvent, Incident
from charter_guardrails.ledger.store import ledger_session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

PERSONAL_VALUES = ["Jeanne Dupont", "jeanne.dupont@example.fr", "06 12 34 56 78", "0612345678"]
TITLE = "Corruption détectée sur citizen_requests.training (data_changed)"
ECS_KEYS = {
    "@timestamp",
    "ecs.version",
    "event.kind",
    "event.category",
    "event.type",
    "event.action",
    "event.id",
    "event.severity",
    "event.created",
    "rule.name",
    "observer.product",
    "observer.vendor",
    "url.full",
    "labels.use_case",
    "labels.dataset",
    "labels.breach_type",
    "labels.notify_deadline",
}


# --- an RFC 5424 reader, written from the RFC's ABNF -------------------------------------------------

HEADER = re.compile(
    rb"<(?P<pri>\d{1,3})>(?P<version>[1-9]\d{0,2}) (?P<timestamp>\S+) (?P<hostname>\S{1,255}) "
    rb"(?P<app>\S{1,48}) (?P<procid>\S{1,128}) (?P<msgid>\S{1,32}) "
)


def _sd_value(text: str, i: int) -> tuple[str, int]:
    """A PARAM-VALUE starting after its opening quote; backslash escapes only ``"``, ``\\`` and ``]``."""
    out = []
    while text[i] != '"':
        if text[i] == "\\" and text[i + 1] in '"\\]':
            out.append(text[i + 1])
            i += 2
        else:
            assert text[i] != "]", "an unescaped ] inside a PARAM-VALUE"
            out.append(text[i])
            i += 1
    return "".join(out), i + 1


def parse_structured_data(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """The SD-ELEMENTs of ``text`` and the MSG after them."""
    if text.startswith("- "):
        return {}, text[2:]
    elements: dict[str, dict[str, str]] = {}
    i = 0
    while i < len(text) and text[i] == "[":
        end = min(p for p in (text.find(" ", i), text.find("]", i)) if p != -1)
        sd_id, i, params = text[i + 1 : end], end, {}
        while text[i] == " ":
            eq = text.index("=", i)
            assert text[eq + 1] == '"'
            params[text[i + 1 : eq]], i = _sd_value(text, eq + 2)
        assert text[i] == "]"
        elements[sd_id], i = params, i + 1
    assert text[i] == " ", "STRUCTURED-DATA is followed by SP MSG"
    return elements, text[i + 1 :]


def parse_syslog(message: bytes) -> dict[str, Any]:
    match = HEADER.match(message)
    assert match, message[:200]
    structured, msg = parse_structured_data(message[match.end() :].decode("utf-8"))
    return {**{k: v.decode() for k, v in match.groupdict().items()}, "sd": structured, "msg": msg}


def read_octet_counted(data: bytes) -> list[bytes]:
    """The frames of a TCP stream framed by octet counting; the stream ends on a frame boundary."""
    frames = []
    while data:
        length, space, rest = data.partition(b" ")
        assert space, data[:40]
        assert length.isdigit(), data[:40]
        frames.append(rest[: int(length)])
        assert len(frames[-1]) == int(length), "a frame is cut short"
        data = rest[int(length) :]
    return frames


# --- receivers on loopback -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ReusableServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class Receiver:
    """A syslog receiver on 127.0.0.1: UDP datagrams, or octet-counted TCP connections, optionally over TLS."""

    def __init__(self, protocol: str, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.protocol, self.tls = protocol, tls
        self.messages: list[bytes] = []
        self.lock = threading.Lock()
        if protocol == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", port))
            self.sock.settimeout(0.2)
            self.port = self.sock.getsockname()[1]
            self.running = True
            self.thread = threading.Thread(target=self._datagrams, daemon=True)
        else:
            receiver = self

            class Handler(socketserver.BaseRequestHandler):
                def handle(self) -> None:
                    receiver._stream(self.request)

            self.server = ReusableServer(("127.0.0.1", port), Handler)
            self.port = self.server.server_address[1]
            self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _datagrams(self) -> None:
        while self.running:
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            with self.lock:
                self.messages.append(data)

    def _stream(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            stream = self.tls.wrap_socket(conn, server_side=True) if self.tls else conn
        except ssl.SSLError:
            return  # a client that does not trust this certificate sends nothing
        data = b""
        with stream:
            while chunk := stream.recv(65536):
                data += chunk
        frames = read_octet_counted(data)
        with self.lock:
            self.messages.extend(frames)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        if self.protocol == "udp":
            self.running = False
            self.thread.join(2)
            self.sock.close()
        else:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    folder = tmp_path_factory.mktemp("siem-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "charter test SIEM")])
    now = datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "siem.pem", folder / "siem.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


# --- events --------------------------------------------------------------------------------------------


def sample_event(event_id: str = "") -> dict[str, Any]:
    """The ECS event of a raised incident that is not stored: the mapping alone."""
    detected = datetime(2026, 11, 28, 3, 0, 12, 345678, tzinfo=UTC)
    incident = Incident(
        id=7,
        key="integrity:citizen_requests:training:manual__1",
        breach_type="integrity",
        severity="critical",
        use_case="citizen_requests",
        dataset="training",
        run_id="manual__1",
        title=TITLE,
        detected_at=detected,
        notify_deadline=detected + timedelta(hours=72),
        status="open",
        data_subject_categories=["usagers"],
        personal_data_categories=["contact"],
        approx_records=300,
        approx_data_subjects=300,
    )
    return ecs_event(
        incident,
        "incident.raised",
        at=detected + timedelta(seconds=1),
        event_id=event_id or audit_event_id(12, "ab" * 32),
        sequence=12,
        chain_hash="ab" * 32,
        base_url="https://airflow.example",
    )


def alert_of(event: dict[str, Any], key: str = "k" * 40) -> Alert:
    return Alert(1, 7, "syslog", "siem_main", key, event, 1)


def test_ecs_event_names_and_values() -> None:
    event = sample_event()
    assert set(event) >= ECS_KEYS
    assert event["event.kind"] == "alert"
    assert event["event.category"] == ["intrusion_detection"]
    assert event["event.type"] == ["start"]
    assert event["event.action"] == "incident.raised"
    assert event["event.id"] == f"charter-audit-12-{'ab' * 8}"
    assert event["event.severity"] == 5
    assert event["@timestamp"] == "2026-11-28T03:00:13.345Z"
    assert event["event.start"] == "2026-11-28T03:00:12.345Z"
    assert event["labels.notify_deadline"] == "2026-12-01T03:00:12.345Z"
    assert event["url.full"] == event["event.url"] == "https://airflow.example/charte/incidents/7"
    assert event["rule.name"] == TITLE
    assert event["labels.approx_records"] == "300"
    assert all(isinstance(v, str) for k, v in event.items() if k.startswith("labels."))


@pytest.mark.parametrize("protocol", ["udp", "tcp", "tls"])
def test_rfc5424_message_reaches_a_receiver(protocol: str, certificate: tuple[Path, Path]) -> None:
    tls = server_context(certificate) if protocol == "tls" else None
    receiver = Receiver(protocol, tls=tls)
    try:
        sender = SyslogSender(
            "127.0.0.1",
            receiver.port,
            protocol,
            ca_file=certificate[0] if protocol == "tls" else None,
            hostname="airflow-worker-1",
        )
        event = sample_event()
        sender.send(alert_of(event))
        messages = receiver.wait_for(1)
    finally:
        receiver.close()
    assert len(messages) == 1
    parsed = parse_syslog(messages[0])
    assert parsed["pri"] == str(13 * 8 + 2)  # log audit, critical
    assert parsed["version"] == "1"
    assert parsed["timestamp"] == "2026-11-28T03:00:13.345000Z"
    assert parsed["hostname"] == "airflow-worker-1"
    assert parsed["app"] == "charter-guardrails"
    assert parsed["procid"].isdigit()
    assert parsed["msgid"] == "incident.raised"
    assert parsed["sd"]["charter@32473"] == {
        "eventId": event["event.id"],
        "idempotencyKey": "k" * 40,
        "incidentId": "7",
    }
    assert parsed["sd"]["origin"]["software"] == "charter-guardrails"
    assert json.loads(parsed["msg"]) == event
    assert parsed["msg"].isascii()


def test_tls_verifies_the_receiver_certificate(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    receiver = Receiver("tls", tls=server_context(certificate))
    try:
        with pytest.raises(DeliveryError, match=r"syslog over tls to 127\.0\.0\.1:\d+ failed .*CERTIFICATE_VERIFY"):
            SyslogSender("127.0.0.1", receiver.port, "tls", timeout=3).send(alert_of(sample_event()))
        assert receiver.wait_for(1, timeout=0.5) == []
    finally:
        receiver.close()
    with pytest.raises(ConfigError, match=r"CA file .* does not exist"):
        SyslogSender("127.0.0.1", 6514, "tls", ca_file=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="use udp, tcp or tls"):
        SyslogSender("127.0.0.1", 514, "relp")


def test_structured_data_values_are_escaped() -> None:
    assert escape_param_value('a"b]c\\d') == 'a\\"b\\]c\\\\d'
    tricky = 'id "quoted"] back\\slash'
    raw = format_message(sample_event(event_id=tricky), idempotency_key='k"]\\', hostname="h")
    assert b'eventId="id \\"quoted\\"\\] back\\\\slash"' in raw
    assert b'idempotencyKey="k\\"\\]\\\\"' in raw
    parsed = parse_syslog(raw)
    assert parsed["sd"]["charter@32473"]["eventId"] == tricky
    assert parsed["sd"]["charter@32473"]["idempotencyKey"] == 'k"]\\'
    assert json.loads(parsed["msg"])["event.id"] == tricky
    assert octet_counted(raw) == str(len(raw)).encode() + b" " + raw


def test_router_names_an_unknown_destination() -> None:
    def resolve(conn_id: str) -> SyslogSender:
        raise ConfigError(f"no connection {conn_id!r}: define AIRFLOW_CONN_{conn_id.upper()}")

    with pytest.raises(DeliveryError, match="syslog destination 'siem_x' is not usable: no connection"):
        SyslogRouter(resolve).send(Alert(1, 7, "syslog", "siem_x", "k", sample_event(), 1))


# --- on the ledger ---------------------------------------------------------------------------------------


def siem_policy(policies: dict[str, Any]) -> Any:
    policy = policies["citizen_requests"]
    destinations = [
        AlertDestination(kind="syslog", conn_id="siem_tcp"),
        AlertDestination(kind="syslog", conn_id="siem_tls"),
        AlertDestination(kind="webhook", conn_id="soc_hook"),
    ]
    return policy.model_copy(update={"incidents": policy.incidents.model_copy(update={"destinations": destinations})})


def draft(run: int) -> IncidentDraft:
    return IncidentDraft(
        breach_type=BreachType.INTEGRITY,
        severity="critical",
        dataset="training",
        run_id=f"scheduled__2026-11-28T0{run}:00:00+00:00",
        title=TITLE,
        nature="the training file differs from its signed manifest",
        facts={"outcome": "data_changed", "changed_chunks": [3], "ranges": [{"chunk": 3, "rows": [1349, 1801]}]},
        likely_consequences="a model trained on altered data",
        measures_taken=["refresh blocked", "dataset quarantined"],
        approx_records=300,
    )


def follow_incident(policy: Any, run: int, *, queue: bool = True) -> int:
    """Raise, acknowledge, decide on and resolve an incident, with personal values in every free text."""
    comment = f"Rappeler {PERSONAL_VALUES[0]} au {PERSONAL_VALUES[2]} ou {PERSONAL_VALUES[1]}"
    with ledger_session() as session:
        incident, created = raise_incident(session, policy, draft(run))
        assert created
        if queue:
            assert len(queue_siem_events(session, incident, "incident.raised", policy)) in (0, 2)
            assert queue_siem_events(session, incident, "incident.raised", policy) == []  # once per key
        incident_id = incident.id
    steps = [
        lambda s: transition(s, incident_id, IncidentStatus.ACKNOWLEDGED, actor="rssi", comment=comment),
        lambda s: record_art33(
            s,
            incident_id,
            "not_required",
            actor="rssi",
            rationale=f"Restauré depuis la sauvegarde vérifiée avant tout usage ; {comment}; aucune donnée exposée.",
        ),
        lambda s: transition(s, incident_id, IncidentStatus.RESOLVED, actor="rssi", comment=comment),
    ]
    for step, action in zip(
        steps, ["incident.acknowledged", "incident.art33_decision", "incident.resolved"], strict=True
    ):
        with ledger_session() as session:
            incident = step(session)
            if queue:
                queue_siem_events(session, incident, action, policy)
    return incident_id


def syslog_rows() -> list[AlertOutbox]:
    with ledger_session() as session:
        return list(session.scalars(select(AlertOutbox).where(AlertOutbox.channel == "syslog")))


def test_siem_outage_of_two_hours_every_event_delivered_once(
    ledger_url: str, policies: dict[str, Any], certificate: tuple[Path, Path]
) -> None:
    policy = siem_policy(policies)
    incident_ids = [follow_incident(policy, run) for run in range(2)]
    rows = syslog_rows()
    assert len(rows) == 2 * 4 * 2  # incidents x state changes x syslog destinations
    assert Counter(r.recipient for r in rows) == {"siem_tcp": 8, "siem_tls": 8}
    tcp_port, tls_port = free_port(), free_port()
    senders = {
        "siem_tcp": SyslogSender("127.0.0.1", tcp_port, "tcp", timeout=2),
        "siem_tls": SyslogSender("127.0.0.1", tls_port, "tls", ca_file=certificate[0], timeout=2),
    }

    def resolve(conn_id: str) -> SyslogSender:
        return senders[conn_id]

    backoff = Backoff(base=timedelta(seconds=30), factor=2.0, max_delay=timedelta(minutes=10), max_attempts=60)
    t0 = datetime.now(UTC)
    receivers: list[Receiver] = []
    try:
        for minute in range(0, 151):  # one relay pass per simulated minute; the SIEM is down for two hours
            if minute == 120:
                receivers = [Receiver("tcp", tcp_port), Receiver("tls", tls_port, tls=server_context(certificate))]
            now = t0 + timedelta(minutes=minute)
            relay_once({"syslog": SyslogRouter(resolve)}, clock=lambda now=now: now, backoff=backoff)
        received = {name: r.wait_for(8) for name, r in zip(["siem_tcp", "siem_tls"], receivers, strict=True)}
    finally:
        for receiver in receivers:
            receiver.close()
    rows = syslog_rows()
    assert {r.status for r in rows} == {"delivered"}, [(r.recipient, r.status, r.attempts, r.last_error) for r in rows]
    for row in rows:
        assert row.delivered_at is not None
        assert row.delivered_at >= t0 + timedelta(minutes=120)
        assert 5 <= row.attempts <= 20, row.attempts  # backed off during the outage, never given up
    with ledger_session() as session:
        exported = {e["event.id"]: e for e in incident_events(session)}
    for conn_id, messages in received.items():
        parsed = [parse_syslog(m) for m in messages]
        keys = Counter(p["sd"]["charter@32473"]["idempotencyKey"] for p in parsed)
        assert keys == Counter({r.idempotency_key: 1 for r in rows if r.recipient == conn_id})
        for p in parsed:
            event = json.loads(p["msg"])
            assert p["msgid"] == event["event.action"]
            assert event == exported[event["event.id"]]  # the event queued is the event the chain exports
        assert {json.loads(p["msg"])["labels.incident_id"] for p in parsed} == {str(i) for i in incident_ids}
        assert not any(v.encode() in m for m in messages for v in PERSONAL_VALUES)


def test_export_prints_one_ecs_line_per_incident_audit_event(
    ledger_url: str, policies: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = siem_policy(policies)
    before = datetime.now(UTC) - timedelta(seconds=1)
    incident_ids = [follow_incident(policy, run, queue=False) for run in range(2)]
    with ledger_session() as session:
        chain = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.startswith("incident."), AuditEvent.subject_type == "incidents")
                .order_by(AuditEvent.seq)
            )
        )
    assert len(chain) == 2 * 4

    assert charter(["incidents", "export", "--since", before.isoformat()]) == 0
    output = capsys.readouterr().out
    lines = [json.loads(line) for line in output.splitlines()]
    assert [e["event.id"] for e in lines] == [audit_event_id(ev.seq, ev.hash) for ev in chain]
    assert [e["event.action"] for e in lines[:4]] == [
        "incident.raised",
        "incident.acknowledged",
        "incident.art33_decision",
        "incident.resolved",
    ]
    for event in lines:
        assert set(event) >= ECS_KEYS
        assert event["observer.product"] == "charter-guardrails"
        assert event["labels.incident_id"] in {str(i) for i in incident_ids}
    assert [e["event.kind"] for e in lines[:4]] == ["alert", "event", "event", "event"]
    assert [e["labels.status"] for e in lines[:2]] == ["open", "acknowledged"]
    assert lines[2]["labels.art33_decision"] == "not_required"
    assert lines[3]["event.type"] == ["end"]
    assert "event.end" in lines[3]
    for value in [*PERSONAL_VALUES, "rssi", "dpo@ampmetropole.example", "Restauré", "Rappeler"]:
        assert value not in output, value

    out = tmp_path / "siem" / "incidents.jsonl"
    out.parent.mkdir()
    day = date.today().isoformat()
    assert charter(["incidents", "export", "--since", day, "--until", day, "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == output
    assert "8 incident event(s) written to" in capsys.readouterr().err

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        charter(
            ["incidents", "export", "--since", later, "--until", (datetime.now(UTC) + timedelta(hours=2)).isoformat()]
        )
        == 0
    )
    assert capsys.readouterr().out == ""
    with ledger_session() as session:
        resumed = list(incident_events(session, after_seq=chain[3].seq))
    assert [e["event.id"] for e in resumed] == [e["event.id"] for e in lines[4:]]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "2026-13-01"], "argument --since: '2026-13-01' is not a date or a date and time: use YYYY-MM-DD"),
        (["--since", "yesterday"], "argument --since: 'yesterday' is not a date"),
        (
            ["--since", "2026-12-02", "--until", "2026-12-01"],
            "--until .* is not after --since .*: give a later --until",
        ),
        (["--since", "2026-12-01", "--format", "csv"], "argument --format: invalid choice: 'csv'"),
    ],
)
def test_export_refuses_bad_dates_with_exit_2(
    charter_home: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = charter(["incidents", "export", *argv])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert re.search(message, capsys.readouterr().err)


def test_export_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        charter(["incidents", "export", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for expected in ("--since DATE|DATETIME", "--until DATE|DATETIME", "--out FILE", "Elastic Common Schema"):
        assert expected in text


def test_every_state_change_is_queued_for_the_siem_without_being_asked(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy file's syslog destinations get the raise, the acknowledgement, the decision and the
    resolution of an incident: the incident code and the decisions queue them, nobody else has to."""
    import yaml
    from charter_guardrails.core.policy import load_policy

    source = Path(__file__).resolve().parents[2] / "include" / "policies" / "citizen_requests.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["incidents"]["destinations"] = [{"kind": "syslog", "conn_id": "siem_tcp"}, {"kind": "webhook", "conn_id": "h"}]
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "citizen_requests.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(folder))
    follow_incident(load_policy("citizen_requests"), 0, queue=False)
    rows = syslog_rows()
    assert sorted(r.payload["event.action"] for r in rows) == sorted(
        ["incident.raised", "incident.acknowledged", "incident.art33_decision", "incident.resolved"]
    )
    assert {r.recipient for r in rows} == {"siem_tcp"}
    with ledger_session() as session:
        exported = {e["event.id"] for e in incident_events(session)}
    assert {r.payload["event.id"] for r in rows} == exported, "the queued events are the chain's own"
