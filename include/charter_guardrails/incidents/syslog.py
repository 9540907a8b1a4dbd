"""ECS incident events as RFC 5424 syslog messages, sent to a SIEM over UDP, TCP or TLS.

A message is ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [STRUCTURED-DATA] MSG`` (RFC 5424):

- PRI = facility × 8 + severity; the facility is ``log audit`` (13) by default, the severity comes from the
  event's ``event.severity`` (:data:`SYSLOG_SEVERITY`: 5 → critical … 1 → informational);
- TIMESTAMP is the event's ``@timestamp`` (RFC 3339, UTC), so a retried message has the header of the first;
- APP-NAME ``charter-guardrails``, MSGID the event's ``event.action``;
- STRUCTURED-DATA: ``[charter@<enterprise number> eventId="…" idempotencyKey="…" incidentId="…"]`` and the
  registered ``[origin software="charter-guardrails" swVersion="…"]``; PARAM-VALUEs escape ``"``, ``\\``
  and ``]`` with a backslash (RFC 5424 §6.3.3);
- MSG is the ECS event as JSON, ASCII only (``ensure_ascii``), so it needs no BOM.

Transports: UDP (RFC 5426, one datagram per message, fire and forget: a lost datagram is not seen), TCP
with octet-counting framing ``MSG-LEN SP SYSLOG-MSG`` (RFC 6587 §3.4.1), and the same over TLS (RFC 5425),
certificate and host name verified against the system's CAs or ``ca_file``. A TCP or TLS send that fails
raises :class:`DeliveryError`, and the relay retries the outbox row.

The formatter is written here rather than taken from PyPI: the packages that format RFC 5424
(``rfc5424-logging-handler``, last released in 2019, ``syslog-rfc5424-formatter``) are handlers and
formatters of the ``logging`` module. They stamp the time of the logging call, not the event's, and a
``logging`` handler hands a failed send to ``handleError`` instead of raising it, while the relay must see
each failure to retry the row.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charter_guardrails import __version__
from charter_guardrails.core.errors import ConfigError, DeliveryError
from charter_guardrails.incidents.connections import ConnectionInfo
from charter_guardrails.incidents.messages import Alert
from charter_guardrails.incidents.senders import Sender

APP_NAME = "charter-guardrails"
#: Syslog facility 13, "log audit" (RFC 5424 §6.2.1).
FACILITY_LOG_AUDIT = 13
#: The IANA Private Enterprise Number reserved for documentation (RFC 5612); an organisation with its own
#: number passes it to :class:`SyslogSender`.
DOCUMENTATION_ENTERPRISE_NUMBER = 32473
SD_NAME = "charter"
PROTOCOLS = ("udp", "tcp", "tls")
DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}

#: ``event.severity`` (1 info … 5 critical, see ``siem.SEVERITY_SCALE``) → syslog severity (RFC 5424 §6.2.1).
SYSLOG_SEVERITY = {5: 2, 4: 3, 3: 4, 2: 5, 1: 6}
#: The syslog severity of an event without a known ``event.severity``: warning.
DEFAULT_SYSLOG_SEVERITY = 4

#: How long a TCP or TLS sender waits for the receiver to close once the message is written.
_CLOSE_WAIT = 2.0


def escape_param_value(value: str) -> str:
    """A PARAM-VALUE with ``"``, ``\\`` and ``]`` escaped (RFC 5424 §6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _ascii_field(value: Any, max_length: int) -> str:
    """A header field: printable US-ASCII, no space (others become ``_``), cut at ``max_length``; ``-`` if empty."""
    text = "".join(c if 33 <= ord(c) <= 126 else "_" for c in str(value or ""))[:max_length]
    return text or "-"


def _sd_name(name: str) -> str:
    if not 1 <= len(name) <= 32 or any(not 33 <= ord(c) <= 126 or c in '= ]"' for c in name):
        raise ConfigError(
            f"{name!r} is not a valid syslog SD-NAME: "
            "use 1 to 32 printable ASCII characters without '=', ' ', ']' or '\"'"
        )
    return name


def sd_element(sd_id: str, params: list[tuple[str, str]]) -> str:
    """One SD-ELEMENT: ``[SD-ID name="value" …]`` with every value escaped."""
    body = "".join(f' {_sd_name(name)}="{escape_param_value(value)}"' for name, value in params)
    return f"[{sd_id}{body}]"


def _timestamp(event: dict[str, Any]) -> str:
    raw = event.get("@timestamp")
    try:
        moment = datetime.fromisoformat(str(raw)) if raw else datetime.now(UTC)
    except ValueError:
        moment = datetime.now(UTC)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def syslog_severity(event: dict[str, Any]) -> int:
    """The syslog severity of an ECS event, from its ``event.severity``."""
    try:
        return SYSLOG_SEVERITY.get(int(event.get("event.severity") or 0), DEFAULT_SYSLOG_SEVERITY)
    except (TypeError, ValueError):
        return DEFAULT_SYSLOG_SEVERITY


def format_message(
    event: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    hostname: str | None = None,
    facility: int = FACILITY_LOG_AUDIT,
    enterprise_number: int = DOCUMENTATION_ENTERPRISE_NUMBER,
    procid: str | None = None,
) -> bytes:
    """The RFC 5424 message of an ECS event, UTF-8 encoded (see the module's layout)."""
    if not 0 <= facility <= 23:
        raise ConfigError(f"syslog facility {facility} is out of range: use 0 to 23 (13 is 'log audit')")
    pri = facility * 8 + syslog_severity(event)
    header = " ".join(
        (
            f"<{pri}>1",
            _timestamp(event),
            _ascii_field(hostname or socket.gethostname(), 255),
            APP_NAME,
            _ascii_field(procid or os.getpid(), 128),
            _ascii_field(event.get("event.action"), 32),
        )
    )
    params = [("eventId", str(event.get("event.id", "")))]
    if idempotency_key:
        params.append(("idempotencyKey", idempotency_key))
    if event.get("labels.incident_id") is not None:
        params.append(("incidentId", str(event["labels.incident_id"])))
    structured = sd_element(f"{SD_NAME}@{enterprise_number}", params) + sd_element(
        "origin", [("software", APP_NAME), ("swVersion", __version__)]
    )
    body = json.dumps(event, ensure_ascii=True, sort_keys=True, separators=(",", ":"), default=str)
    return f"{header} {structured} {body}".encode()


def octet_counted(message: bytes) -> bytes:
    """The message framed for TCP by octet counting: ``MSG-LEN SP SYSLOG-MSG`` (RFC 6587 §3.4.1)."""
    return str(len(message)).encode("ascii") + b" " + message


class SyslogSender:
    """Sends an alert's payload (an ECS event) to one syslog receiver as one RFC 5424 message.

    :param host: the receiver's host name or address.
    :param port: its port (default: 514 for ``udp`` and ``tcp``, 6514 for ``tls``).
    :param protocol: ``udp``, ``tcp`` (octet counting) or ``tls`` (octet counting over TLS).
    :param ca_file: PEM file of the CAs that sign the receiver's certificate (``tls``; default: the system's).
    :param verify: verify the receiver's certificate and host name (``tls``); on unless told otherwise.
    :param timeout: seconds to connect and to write.
    :param hostname: the HOSTNAME of the messages (default: this machine's name).
    :param enterprise_number: the IANA enterprise number of the structured data's SD-ID.
    :param facility: the syslog facility (default 13, log audit).
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        protocol: str = "tls",
        ca_file: str | Path | None = None,
        *,
        verify: bool = True,
        timeout: float = 10.0,
        hostname: str | None = None,
        enterprise_number: int = DOCUMENTATION_ENTERPRISE_NUMBER,
        facility: int = FACILITY_LOG_AUDIT,
    ) -> None:
        protocol = (protocol or "").lower()
        if protocol not in PROTOCOLS:
            raise ConfigError(f"syslog protocol {protocol!r} is not supported: use udp, tcp or tls")
        if not host:
            raise ConfigError("the syslog receiver has no host: give the SIEM's host name or address")
        port = DEFAULT_PORTS[protocol] if port is None else int(port)
        if not 0 < port < 65536:
            raise ConfigError(f"syslog port {port} is out of range: use 1 to 65535")
        self.host, self.port, self.protocol, self.timeout = host, port, protocol, timeout
        self.hostname = hostname or socket.gethostname()
        self.enterprise_number, self.facility = enterprise_number, facility
        self._context = _tls_context(ca_file, verify) if protocol == "tls" else None

    def __repr__(self) -> str:
        return f"SyslogSender({self.protocol}://{self.host}:{self.port})"

    def message(self, alert: Alert) -> bytes:
        """The RFC 5424 message of ``alert``, unframed."""
        return format_message(
            alert.payload,
            idempotency_key=alert.idempotency_key,
            hostname=self.hostname,
            facility=self.facility,
            enterprise_number=self.enterprise_number,
        )

    def send(self, alert: Alert) -> None:
        message = self.message(alert)
        try:
            if self.protocol == "udp":
                self._send_datagram(message)
            else:
                self._send_stream(octet_counted(message))
        except OSError as exc:  # ssl.SSLError and socket.timeout are OSErrors
            raise DeliveryError(
                f"syslog over {self.protocol} to {self.host}:{self.port} failed ({type(exc).__name__}: {exc}); "
                "the relay retries it: check that the SIEM listens there"
                + (" and that its certificate is signed by the configured CA" if self.protocol == "tls" else "")
            ) from None

    def _send_datagram(self, message: bytes) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(self.timeout)
            sock.sendto(message, address)

    def _send_stream(self, framed: bytes) -> None:
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as raw:
            stream = self._context.wrap_socket(raw, server_hostname=self.host) if self._context else raw
            stream.sendall(framed)
            _close_gracefully(stream)


def _tls_context(ca_file: str | Path | None, verify: bool) -> ssl.SSLContext:
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError(
            f"the syslog CA file {ca_file} does not exist: "
            "give the PEM file of the CA that signs the SIEM's certificate"
        )
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _close_gracefully(stream: socket.socket) -> None:
    """End the connection once the message is written, reading what the receiver still sends.

    Closing a socket with unread input makes the kernel reset the connection, which can drop the message
    on the receiver's side; so TLS is closed with ``close_notify``, the write side is shut, and the
    socket is drained until the receiver closes or :data:`_CLOSE_WAIT` passes. The message is already
    written: how the receiver closes does not change the delivery.
    """
    try:
        plain = stream.unwrap() if isinstance(stream, ssl.SSLSocket) else stream
        plain.shutdown(socket.SHUT_WR)
        plain.settimeout(_CLOSE_WAIT)
        while plain.recv(4096):
            pass
    except OSError:
        return


class SyslogRouter:
    """The sender of the ``syslog`` channel: each outbox row names its destination's connection id
    (``recipient``), and ``resolve`` gives the sender for it (a :class:`SyslogSender` built from the
    connection's host, port and extra)."""

    def __init__(self, resolve: Callable[[str], Sender]) -> None:
        self.resolve = resolve

    def send(self, alert: Alert) -> None:
        try:
            sender = self.resolve(alert.recipient)
        except ConfigError as exc:
            raise DeliveryError(f"syslog destination {alert.recipient!r} is not usable: {exc}") from None
        sender.send(alert)


def sender_from_connection(info: ConnectionInfo) -> SyslogSender:
    """A :class:`SyslogSender` for a connection: host and port, and in ``extra`` the ``protocol``
    (``udp``, ``tcp`` or ``tls``, the default), ``ca_file``, ``verify`` and ``enterprise_number``."""
    extra = info.extra or {}
    if not info.host:
        raise ConfigError(f"connection {info.conn_id!r} has no host: give the SIEM's syslog host and port")
    ca_file = extra.get("ca_file")
    return SyslogSender(
        info.host,
        info.port,
        str(extra.get("protocol", "tls")),
        str(ca_file) if ca_file else None,
        verify=str(extra.get("verify", "true")).lower() not in {"0", "false", "no"},
        enterprise_number=int(extra.get("enterprise_number", DOCUMENTATION_ENTERPRISE_NUMBER)),
    )


__all__ = [
    "APP_NAME",
    "FACILITY_LOG_AUDIT",
    "SYSLOG_SEVERITY",
    "SyslogRouter",
    "SyslogSender",
    "escape_param_value",
    "format_message",
    "octet_counted",
    "sd_element",
    "sender_from_connection",
    "syslog_severity",
]
