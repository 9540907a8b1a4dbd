"""Signed webhooks, as the Standard Webhooks specification (https://www.standardwebhooks.com) says.

Each webhook destination is an Airflow connection (see :mod:`charter_guardrails.incidents.connections`):

- the URL: the extra ``url``, or an HTTP connection's ``schema`` (protocol), ``host``, ``port`` and extra ``path``;
- the password: the signing secret, shared with the receiver, in the specification's ``whsec_<base64>`` form.
  Create one with::

      python -c "import base64, secrets; print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())"

  and define the connection, for instance::

      airflow connections add alerts_siem --conn-type http --conn-host siem.example --conn-schema https \\
          --conn-password 'whsec_...' --conn-extra '{"path": "/charter/alerts"}'

Every POST carries ``webhook-id`` (the outbox row's idempotency key: the same for every retry of an
alert, so a receiver drops duplicates), ``webhook-timestamp`` (seconds since the epoch, when it is
sent) and ``webhook-signature`` (``v1,`` then the base64 HMAC-SHA256 of ``id.timestamp.body``). A
receiver checks it with ``standardwebhooks.Webhook(secret).verify(body, headers)``.
The body is the JSON of :func:`~charter_guardrails.incidents.messages.webhook_body`, signed byte for byte
as it is sent. Any answer outside 2xx is a failed attempt, retried by the relay.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from charter_guardrails.incidents.connections import (
    USER_AGENT,
    ConnectionInvalid,
    ConnectionResolver,
    ConnectionSender,
    check_http_status,
    env_connection,
    http_url,
    post_failed,
    require_password,
)
from charter_guardrails.incidents.messages import IDEMPOTENCY_HEADER, Alert, webhook_body

SIGNING_KEY_FORM = "the signing secret in the 'whsec_<base64>' form of the Standard Webhooks specification"


def signed_request(
    alert: Alert, secret: str, *, conn_id: str, now: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of ``alert``'s POST, signed with ``secret`` (``whsec_…``)."""
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import EmptyWebhookSecretError

    body = json.dumps(webhook_body(alert), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    timestamp = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        signature = Webhook(secret).sign(msg_id=alert.idempotency_key, timestamp=timestamp, data=body)
    except (ValueError, EmptyWebhookSecretError):
        raise ConnectionInvalid(conn_id, f"its password is not {SIGNING_KEY_FORM}") from None
    headers = {
        "webhook-id": alert.idempotency_key,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        IDEMPOTENCY_HEADER: alert.idempotency_key,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    return body.encode("utf-8"), headers


class WebhookSender(ConnectionSender):
    """POSTs an alert, signed, to the webhook its outbox row names by connection id."""

    def __init__(
        self,
        resolver: ConnectionResolver = env_connection,
        *,
        timeout: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(resolver, timeout=timeout)
        self.clock = clock

    def send(self, alert: Alert) -> None:
        import httpx

        info = self.resolver(alert.recipient)
        url = http_url(info)
        secret = require_password(info, SIGNING_KEY_FORM)
        body, headers = signed_request(alert, secret, conn_id=info.conn_id, now=self.clock() if self.clock else None)
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise post_failed("webhook", info, exc) from None
        check_http_status("webhook", info, response.status_code)


__all__ = ["SIGNING_KEY_FORM", "WebhookSender", "signed_request"]
