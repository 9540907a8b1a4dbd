"""Where an alert destination is: an Airflow connection, resolved when the alert is sent.

Outbox rows name a destination by its connection id only; the address and the secret are read at send
time through a resolver, ``Callable[[str], ConnectionInfo]``. Inside Airflow the resolver is Airflow's
own (``charter_airflow.connections.airflow_connection``: the metadata database, secrets backends and
``AIRFLOW_CONN_*``). On the command line (``charter alerts relay`` runs outside Airflow),
:func:`env_connection` reads the variables Airflow documents, ``AIRFLOW_CONN_<CONN_ID>``, in URI or JSON
form::

    AIRFLOW_CONN_ALERTS_SIEM='http://:whsec_...@siem.example:8443/https?path=%2Fcharter'
    AIRFLOW_CONN_ALERTS_SIEM='{"conn_type": "http", "password": "whsec_...", "extra": {"url": "https://siem.example/charter"}}'

The URI form is parsed with the rules of Airflow's ``Connection.from_uri`` (the scheme is the connection
type, a second ``protocol://`` belongs to the host, the path is the ``schema``, query parameters are the
extra, or ``__extra__`` holds it as JSON). It is written here rather than imported so that the library
never imports Airflow, and so that a malformed value never reaches a message: Airflow's parser quotes the
whole URI, password included, in its exceptions.

No message of this module contains an address, a password or a URI: only the connection id.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from charter_guardrails.core.errors import ConfigError, DeliveryError

#: Airflow's prefix of connection environment variables.
ENV_PREFIX = "AIRFLOW_CONN_"


@dataclass(frozen=True)
class ConnectionInfo:
    """The parts of an Airflow connection a sender needs. ``repr`` hides the password and the extra."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    schema: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


#: Resolves a connection id to its connection; raises :class:`ConnectionNotFound` when it is not defined.
ConnectionResolver = Callable[[str], ConnectionInfo]


class ConnectionNotFound(ConfigError):
    """An alert destination names a connection that is not defined."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        super().__init__(
            f"alert destination connection {conn_id!r} is not defined: create it with "
            f"`airflow connections add {conn_id} --conn-uri ...` (or in Airflow's UI or secrets backend), or, "
            f"for `charter alerts relay` outside Airflow, set the environment variable {env_variable(conn_id)} "
            "to its URI or JSON form"
        )


class ConnectionInvalid(ConfigError):
    """A connection exists but cannot serve as an alert destination; the message says which part to fix."""

    def __init__(self, conn_id: str, problem: str) -> None:
        self.conn_id = conn_id
        super().__init__(f"alert destination connection {conn_id!r}: {problem}")


def env_variable(conn_id: str) -> str:
    """The environment variable Airflow reads for ``conn_id`` (upper case, as Airflow looks it up)."""
    return f"{ENV_PREFIX}{conn_id.upper()}"


def env_connection(conn_id: str) -> ConnectionInfo:
    """The connection ``conn_id`` from ``AIRFLOW_CONN_<CONN_ID>`` (URI or JSON form)."""
    value = os.environ.get(env_variable(conn_id))
    if not value:
        raise ConnectionNotFound(conn_id)
    value = value.strip()
    if value.startswith("{"):
        return parse_connection_json(conn_id, value)
    return parse_connection_uri(conn_id, value)


def parse_connection_json(conn_id: str, value: str) -> ConnectionInfo:
    """Airflow's JSON form: ``{"conn_type", "host", "schema", "port", "login", "password", "extra"}``."""
    bad = f"{env_variable(conn_id)} is not a JSON object of Airflow connection fields; write it as Airflow documents"
    try:
        fields = json.loads(value)
    except ValueError:
        raise ConnectionInvalid(conn_id, bad) from None
    if not isinstance(fields, dict):
        raise ConnectionInvalid(conn_id, bad)
    return ConnectionInfo(
        conn_id=conn_id,
        conn_type=_text(fields.get("conn_type")),
        host=_text(fields.get("host")),
        schema=_text(fields.get("schema")),
        port=_port(conn_id, fields.get("port")),
        login=_text(fields.get("login")),
        password=_text(fields.get("password")),
        extra=_extra(conn_id, fields.get("extra")),
    )


def parse_connection_uri(conn_id: str, uri: str) -> ConnectionInfo:
    """Airflow's URI form, ``type://login:password@host:port/schema?extra``, read as ``Connection.from_uri`` does."""
    bad = (
        f"{env_variable(conn_id)} is not an Airflow connection URI (type://login:password@host:port/schema?extra); "
        "percent-encode the special characters of each part"
    )
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", uri)
    if match is None or uri.count("://") > 2:
        raise ConnectionInvalid(conn_id, bad)
    conn_type = match.group(1)
    rest = "//" + uri[match.end() :]
    protocol = None
    if uri.count("://") == 2:
        protocol, _, after = uri[match.end() :].partition("://")
        if "@" in protocol or ":" in protocol:
            raise ConnectionInvalid(conn_id, bad)
        rest = protocol + "://" + after
    try:
        parts = urlsplit(rest)
        port = parts.port
    except ValueError:
        raise ConnectionInvalid(conn_id, bad) from None
    host = _hostname(parts.hostname, parts.netloc) or None
    if host and protocol:
        host = f"{protocol}://{host}"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra: dict[str, Any] = _extra(conn_id, query["__extra__"]) if "__extra__" in query else query
    return ConnectionInfo(
        conn_id=conn_id,
        conn_type=conn_type.replace("-", "_"),
        host=host,
        schema=unquote(parts.path[1:]) or None,
        port=port,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        extra=extra,
    )


def _hostname(hostname: str | None, netloc: str) -> str:
    """The host as Airflow reads it: a percent-encoded ``/`` keeps the host as written (e.g. a socket path)."""
    host = unquote(hostname or "")
    if "/" in host:
        host = unquote(netloc.rsplit("@", 1)[-1].split(":", 1)[0])
    return host


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _port(conn_id: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConnectionInvalid(conn_id, "its port is not a number; give the port as an integer") from None


def _extra(conn_id: str, value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise ConnectionInvalid(conn_id, "its extra is not a JSON object; write the extra as a JSON object")
    return value


#: Loggers of the HTTP clients that write request URLs (webhook keys, Teams signatures, tokens in paths): httpx
#: at INFO, httpcore, urllib3 (under apprise's ``requests``) and apprise at DEBUG.
_URL_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "urllib3": logging.INFO, "apprise": logging.INFO}


def keep_urls_out_of_logs() -> None:
    """Raise the HTTP clients' loggers above the levels at which they write a request's URL."""
    for name, level in _URL_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level < level:  # its own level: a lower root level (a debug session) must not reopen it
            logger.setLevel(level)


#: How the relay names itself to the services it posts to.
USER_AGENT = "charter-guardrails-relay"


class ConnectionSender:
    """Base of the senders that deliver at an Airflow connection: the resolver that names the connection's
    address and secret at send time, the request timeout, and HTTP client logs that never show a URL."""

    def __init__(self, resolver: ConnectionResolver = env_connection, *, timeout: float = 10.0) -> None:
        self.resolver = resolver
        self.timeout = timeout
        keep_urls_out_of_logs()


def post_failed(service: str, info: ConnectionInfo, exc: Exception) -> DeliveryError:
    """A failed attempt: the service, the connection and the kind of error; never the URL or the secret."""
    return DeliveryError(f"{service} (connection {info.conn_id}): {type(exc).__name__}")


def check_http_status(service: str, info: ConnectionInfo, status: int) -> None:
    """A non-2xx answer is a failed attempt, retried by the relay."""
    if not 200 <= status < 300:
        raise DeliveryError(f"{service} (connection {info.conn_id}) answered HTTP {status}")


def http_url(info: ConnectionInfo) -> str:
    """The URL of an HTTP connection: the extra ``url``; else ``schema://host:port`` plus the extra ``path``.

    As in Airflow's HTTP connection, ``schema`` is the protocol (``https`` when unset here: alerts leave the
    network) and ``host`` may carry its own protocol (``https://hooks.example``).
    """
    url = info.extra.get("url")
    if url:
        if not isinstance(url, str) or not re.match(r"^https?://[^/?#]+", url):
            raise ConnectionInvalid(info.conn_id, "its extra 'url' must be an http:// or https:// URL")
        return url
    if not info.host:
        raise ConnectionInvalid(
            info.conn_id, "it has neither a host nor an extra 'url'; set the host (and port, schema) or the extra 'url'"
        )
    if "://" in info.host:
        base = info.host.rstrip("/")
    else:
        scheme = info.schema if info.schema in {"http", "https"} else "https"
        base = f"{scheme}://{info.host}"
    if info.port:
        base += f":{info.port}"
    path = str(info.extra.get("path") or info.extra.get("endpoint") or "")
    return base + ("/" + path.lstrip("/") if path else "")


def require_password(info: ConnectionInfo, what: str) -> str:
    """The connection's password, or a configuration error saying what it should hold."""
    if not info.password:
        raise ConnectionInvalid(info.conn_id, f"it has no password; set the password to {what}")
    return info.password


__all__ = [
    "ENV_PREFIX",
    "ConnectionInfo",
    "ConnectionInvalid",
    "ConnectionNotFound",
    "ConnectionResolver",
    "env_connection",
    "env_variable",
    "http_url",
    "keep_urls_out_of_logs",
    "parse_connection_json",
    "parse_connection_uri",
    "require_password",
]
