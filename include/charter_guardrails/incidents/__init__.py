"""Incident alerts, delivered at least once from the ledger's outbox (e-mail and webhook)."""

from __future__ import annotations

from charter_guardrails.incidents.messages import IDEMPOTENCY_HEADER, Alert, email_message, webhook_body
from charter_guardrails.incidents.relay import Backoff, RelayReport, outbox_status, relay, relay_once
from charter_guardrails.incidents.senders import Sender, SmtpSender, SmtpSettings, WebhookSender, default_senders

__all__ = [
    "IDEMPOTENCY_HEADER",
    "Alert",
    "Backoff",
    "RelayReport",
    "Sender",
    "SmtpSender",
    "SmtpSettings",
    "WebhookSender",
    "default_senders",
    "email_message",
    "outbox_status",
    "relay",
    "relay_once",
    "webhook_body",
]
