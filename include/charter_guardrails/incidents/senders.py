"""Deliver one alert: e-mail through SMTP (``smtplib``); signed webhooks (:mod:`.webhooks`) and chat rooms
(:mod:`.chat`: Matrix/Tchap, Teams, Mattermost) at the address of the Airflow connection their outbox row names.

Inside Airflow, ``charter_airflow`` provides a sender that goes through the SMTP provider's hook
and the ``smtp_default`` connection, and Airflow's own connection resolver; this library never imports Airflow.

A sender raises :class:`DeliveryError` on failure; its message never contains a password, a token or a URL.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from typing import Protocol

from charter_guardrails.core.errors import ConfigError, DeliveryError
from charter_guardrails.incidents.chat import MatrixSender, MattermostSender, TeamsSender
from charter_guardrails.incidents.connections import ConnectionResolver, env_connection
from charter_guardrails.incidents.messages import Alert, email_message
from charter_guardrails.incidents.webhooks import WebhookSender

DEFAULT_FROM = "charte-ia@ampmetropole.example"


class Sender(Protocol):
    def send(self, alert: Alert) -> None: ...


@dataclass(frozen=True)
class SmtpSettings:
    """SMTP settings from the environment. ``repr`` hides the password."""

    host: str
    port: int = 25
    user: str | None = None
    password: str | None = None
    sender: str = DEFAULT_FROM
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0

    def __repr__(self) -> str:
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, user={self.user!r}, "
            f"password={'***' if self.password else None})"
        )

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        """``CHARTER_SMTP_HOST`` (required), ``_PORT``, ``_USER``, ``_PASSWORD``, ``_FROM``, ``_STARTTLS``, ``_SSL``.

        None when ``CHARTER_SMTP_HOST`` is unset.
        """
        host = os.environ.get("CHARTER_SMTP_HOST")
        if not host:
            return None
        port_text = os.environ.get("CHARTER_SMTP_PORT", "25")
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"CHARTER_SMTP_PORT must be a number, got {port_text!r}") from None
        return cls(
            host=host,
            port=port,
            user=os.environ.get("CHARTER_SMTP_USER") or None,
            password=os.environ.get("CHARTER_SMTP_PASSWORD") or None,
            sender=os.environ.get("CHARTER_SMTP_FROM") or DEFAULT_FROM,
            starttls=os.environ.get("CHARTER_SMTP_STARTTLS", "").lower() in {"1", "true", "yes"},
            ssl=os.environ.get("CHARTER_SMTP_SSL", "").lower() in {"1", "true", "yes"},
        )


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


class SmtpSender:
    """Sends the French e-mail of an alert with ``smtplib``."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, alert: Alert) -> None:
        s = self.settings
        msg = email_message(alert, sender=s.sender)
        try:
            client: smtplib.SMTP
            if s.ssl:
                client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                if s.starttls:
                    client.starttls(context=ssl.create_default_context())
                if s.user:
                    client.login(s.user, s.password or "")
                refused = client.send_message(msg, from_addr=s.sender, to_addrs=[alert.recipient])
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(_redact(f"SMTP {s.host}:{s.port}: {type(exc).__name__}: {exc}", s.password)) from None
        if refused:
            raise DeliveryError(f"SMTP {s.host}:{s.port} refused the recipient")


def default_senders(resolver: ConnectionResolver | None = None) -> dict[str, Sender]:
    """A sender per channel: e-mail when ``CHARTER_SMTP_HOST`` is set, and every destination named by connection
    (signed webhooks, Matrix, Teams, Mattermost, and SIEMs over syslog).

    :param resolver: resolves a destination's connection id when an alert is sent; Airflow's own inside
        Airflow, ``AIRFLOW_CONN_<CONN_ID>`` variables (the default) on the command line.
    """
    resolve = resolver or env_connection
    senders: dict[str, Sender] = {
        "webhook": WebhookSender(resolve),
        "matrix": MatrixSender(resolve),
        "teams": TeamsSender(resolve),
        "mattermost": MattermostSender(resolve),
    }
    # Imported here: the syslog module builds on this one's Sender protocol.
    from charter_guardrails.incidents.syslog import SyslogRouter, sender_from_connection

    senders["syslog"] = SyslogRouter(lambda conn_id: sender_from_connection(resolve(conn_id)))
    settings = SmtpSettings.from_env()
    if settings is not None:
        senders["email"] = SmtpSender(settings)
    return senders


__all__ = [
    "DEFAULT_FROM",
    "MatrixSender",
    "MattermostSender",
    "Sender",
    "SmtpSender",
    "SmtpSettings",
    "TeamsSender",
    "WebhookSender",
    "default_senders",
]
