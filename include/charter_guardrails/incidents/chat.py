"""Incident alerts in chat rooms: Tchap/Matrix, Microsoft Teams and Mattermost.

Each room is an Airflow connection named by the outbox row (see :mod:`charter_guardrails.incidents.connections`):

- **Matrix / Tchap**: the homeserver as an HTTP connection (``schema``, ``host``, ``port``, or extra ``url``),
  the access token of the sending account as the password, the room id (``!abc:server``) as extra ``room_id``;
- **Teams**: the URL of the channel's Workflows webhook ("Post to a channel when a webhook request is
  received") as extra ``url`` (or host, port and extra ``path``);
- **Mattermost**: the incoming webhook URL ``https://chat.example/hooks/<key>`` as extra ``url``, or the server
  as host (and port, schema) with the webhook key as the password.

The message is short and French: the incident's number and title, its type, its severity, the CNIL
notification deadline, the link to the incident when the payload has one, and the idempotency key. It
holds no personal value (the payload holds none).

Every sender raises :class:`DeliveryError` for an attempt that failed (retried by the relay) and a
:class:`~charter_guardrails.incidents.connections.ConnectionNotFound` or ``ConnectionInvalid`` for a
destination to fix; no message names the URL, the token or the key.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlsplit

from charter_guardrails.core.errors import DeliveryError
from charter_guardrails.incidents.connections import (
    USER_AGENT,
    ConnectionInfo,
    ConnectionInvalid,
    ConnectionSender,
    check_http_status,
    http_url,
    post_failed,
    require_password,
)
from charter_guardrails.incidents.messages import IDEMPOTENCY_HEADER, Alert
from charter_guardrails.reporting.vocabulary import breach_type_label, severity_label


def _deadline(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%d/%m/%Y à %H:%M UTC")
    except ValueError:
        return str(value or "-")


def chat_lines(alert: Alert) -> list[str]:
    """The lines of the chat message: title, type, severity, deadline, link if any, idempotency key."""
    p = alert.payload
    lines = [
        f"Incident n°{p.get('incident_id', alert.incident_id)} : {p.get('title', 'incident de sécurité')}",
        f"Type : {breach_type_label(str(p.get('breach_type')))}",
        f"Gravité : {severity_label(str(p.get('severity', '-')))}",
        f"Notification à la CNIL avant le {_deadline(p.get('notify_deadline'))} (art. 33 RGPD)",
    ]
    if p.get("link"):
        lines.append(f"Détails : {p['link']}")
    lines.append(f"Réf. {alert.idempotency_key}")
    return lines


def chat_text(alert: Alert) -> str:
    """The chat message as plain text, headed by the charter's alert prefix."""
    return "\n".join(["[Charte IA – Sûreté]", *chat_lines(alert)])


class MatrixSender(ConnectionSender):
    """Sends the alert to a Matrix room (Tchap is Matrix) with the client-server API.

    ``PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}`` with the outbox row's idempotency key
    as ``txnId``: the homeserver stores the transaction per access token and answers a repeated one with the
    first event, so a redelivery after a crash posts nothing new. Apprise's Matrix plugin picks the
    transaction id itself (a counter or a random UUID), so it cannot give this guarantee: the call is made
    here with ``httpx``.
    """

    def send(self, alert: Alert) -> None:
        import httpx

        info = self.resolver(alert.recipient)
        room = info.extra.get("room_id") or info.extra.get("room")
        if not room:
            raise ConnectionInvalid(info.conn_id, "it has no extra 'room_id'; set it to the room id (!abc:server)")
        token = require_password(info, "the access token of the account that posts the alerts")
        base = http_url(info).rstrip("/")
        url = (
            f"{base}/_matrix/client/v3/rooms/{quote(str(room), safe='')}"
            f"/send/m.room.message/{quote(alert.idempotency_key, safe='')}"
        )
        formatted = "<br>".join(escape(line) for line in chat_lines(alert))
        body = {
            "msgtype": "m.text",
            "body": chat_text(alert),
            "format": "org.matrix.custom.html",
            "formatted_body": f"<strong>[Charte IA – Sûreté]</strong><br>{formatted}",
        }
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        try:
            response = httpx.put(url, json=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise post_failed("Matrix", info, exc) from None
        check_http_status("Matrix", info, response.status_code)


def teams_card(alert: Alert) -> dict[str, Any]:
    """The Teams Workflows webhook payload: a message with one Adaptive Card."""
    lines = chat_lines(alert)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": "[Charte IA – Sûreté]", "weight": "Bolder", "color": "Attention"},
        {"type": "TextBlock", "text": lines[0], "weight": "Bolder", "wrap": True},
        *({"type": "TextBlock", "text": line, "wrap": True} for line in lines[1:-1] if not line.startswith("Détails")),
        {"type": "TextBlock", "text": lines[-1], "isSubtle": True, "size": "Small"},
    ]
    link = alert.payload.get("link")
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Voir l'incident", "url": str(link)}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


class TeamsSender(ConnectionSender):
    """Posts the alert as an Adaptive Card to a Teams channel's Workflows webhook.

    Apprise's Teams plugin (``workflows``) always calls ``https://`` and rebuilds the URL from its parts with its
    own ``api-version``, so it cannot post to the URL exactly as Teams gave it (nor to a test or relay endpoint
    over plain HTTP): the documented payload is posted here with ``httpx``. Teams has no idempotency key of its
    own; the key is sent as ``X-Idempotency-Key`` and shown in the card.
    """

    def send(self, alert: Alert) -> None:
        import httpx

        info = self.resolver(alert.recipient)
        url = http_url(info)
        headers = {IDEMPOTENCY_HEADER: alert.idempotency_key, "User-Agent": USER_AGENT}
        try:
            response = httpx.post(url, json=teams_card(alert), headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise post_failed("Teams", info, exc) from None
        check_http_status("Teams", info, response.status_code)


def mattermost_apprise_url(info: ConnectionInfo) -> str:
    """The apprise URL (``mmost://`` or ``mmosts://``) of a Mattermost incoming webhook connection."""
    url = http_url(info)
    base, _, key = url.partition("/hooks/")
    key = key.strip("/") or (info.password or "")
    if not key:
        raise ConnectionInvalid(
            info.conn_id, "it has no webhook key; give the extra 'url' as .../hooks/<key> or the key as the password"
        )
    parts = urlsplit(base)
    scheme = "mmosts" if parts.scheme == "https" else "mmost"
    port = f":{parts.port}" if parts.port else ""
    path = parts.path.rstrip("/")
    return f"{scheme}://charte-ia@{parts.hostname}{port}{path}/{quote(key, safe='')}?image=no"


class MattermostSender(ConnectionSender):
    """Posts the alert to a Mattermost incoming webhook with apprise (which accepts any host and port).

    Mattermost has no idempotency key for incoming webhooks; the key is in the message's last line.
    """

    def send(self, alert: Alert) -> None:
        import apprise

        info = self.resolver(alert.recipient)
        target = mattermost_apprise_url(info)
        notifier = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
        if not notifier.add(target):
            raise ConnectionInvalid(info.conn_id, "its host, port or webhook key is not a valid Mattermost webhook")
        try:
            delivered = bool(notifier.notify(body=chat_text(alert), timeout=self.timeout))
        except Exception as exc:  # noqa: BLE001 - any failure of the library is one failed attempt
            raise post_failed("Mattermost", info, exc) from None
        if not delivered:
            raise DeliveryError(
                f"Mattermost (connection {info.conn_id}) did not accept the message (unreachable or refused)"
            )


__all__ = [
    "MatrixSender",
    "MattermostSender",
    "TeamsSender",
    "chat_lines",
    "chat_text",
    "mattermost_apprise_url",
    "teams_card",
]
