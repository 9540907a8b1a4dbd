"""Deliver one alert: e-mail through SMTP (``smtplib``) or an HTTP POST webhook (``httpx``).

Inside Airflow, ``charter_airflow`` provides a sender that goes through the SMTP provider's hook
and the ``smtp_default`` connection; this library never imports Airflow.

A sender raises :class:`DeliveryError` on failure; its message never contains the SMTP password.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from typing import Protocol

from charter_guardrails.core.errors import ConfigError, DeliveryError
from charter_guardrails.incidents.messages import IDEMPOTENCY_HEADER, Alert, email_message, webhook_body

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


class WebhookSender:
    """POSTs the alert as JSON; any non-2xx answer is a failed attempt."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def send(self, alert: Alert) -> None:
        import httpx

        try:
            response = httpx.post(
                alert.recipient,
                json=webhook_body(alert),
                timeout=self.timeout,
                headers={IDEMPOTENCY_HEADER: alert.idempotency_key, "User-Agent": "charter-guardrails-relay"},
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"webhook answered HTTP {response.status_code}")


def default_senders() -> dict[str, Sender]:
    """Senders configured by the environment: e-mail when ``CHARTER_SMTP_HOST`` is set, and the webhook."""
    senders: dict[str, Sender] = {"webhook": WebhookSender()}
    settings = SmtpSettings.from_env()
    if settings is not None:
        senders["email"] = SmtpSender(settings)
    return senders
