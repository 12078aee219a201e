"""Alert payloads in the shape each receiver expects.

- Slack incoming webhook: Block Kit (``blocks``) with a plain ``text`` fallback
  used by notifications (https://api.slack.com/messaging/webhooks).
- Discord webhook: ``content`` plus one embed whose fields hold the details
  (https://discord.com/developers/docs/resources/webhook#execute-webhook).
- Generic JSON webhook: a flat, documented object (see docs/monitoring.md).

Every payload carries the delivery's idempotency key (also sent as the
``Idempotency-Key`` header): the generic webhook as ``idempotency_key``, Slack
in its context line, Discord in its embed footer, so a receiver — or a human
reading two messages — can tell a resent copy from a new alert.

Only the payload is built here; where it goes (the URL, a secret) is the
delivery's business, so nothing in this module ever sees a URL.

A channel kind is an :class:`AlertChannelType` registered in the entry-point
group ``conveyor.alert_channels`` (:data:`conveyor.extensions.ALERT_CHANNELS`):
the three built-in kinds below are declared there in Conveyor's own
pyproject.toml, and a plugin package adds a kind the same way
(docs/extending.md). Delivery is the same for every kind: the payload is
POSTed as JSON to the URL in the channel's ``url_env``, with the idempotency
key, retries and outbox of :mod:`conveyor.monitoring._alerts`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from conveyor.errors import ExtensionError
from conveyor.extensions import ALERT_CHANNELS

# Receivers' documented limits: Slack section text ≤ 3000 characters and at
# most 10 fields per section; Discord embeds ≤ 25 fields, field value ≤ 1024.
SLACK_TEXT_LIMIT = 3000
SLACK_FIELDS_PER_SECTION = 10
DISCORD_FIELD_LIMIT = 25
DISCORD_VALUE_LIMIT = 1024
DISCORD_DESCRIPTION_LIMIT = 4096
DISCORD_COLOR_ALERT = 0xD9534F
PAYLOAD_SCHEMA = "conveyor.alert/v1"


@dataclass(frozen=True)
class Alert:
    """What an alert says, independent of where it goes."""

    title: str
    text: str
    fields: dict[str, str]
    incident: str | None
    project: str
    created_at: datetime
    idempotency_key: str | None = None  # one per incident (see _alerts); the same on every resend


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(alert: Alert) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(alert.title, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(alert.text or " ", SLACK_TEXT_LIMIT)}},
    ]
    items = list(alert.fields.items())
    for start in range(0, len(items), SLACK_FIELDS_PER_SECTION):
        chunk = items[start : start + SLACK_FIELDS_PER_SECTION]
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": _cut(f"*{k}*\n{v}", 2000)} for k, v in chunk],
            }
        )
    context = f"project *{alert.project}*"
    if alert.incident:
        context += f" · incident `{alert.incident}`"
    if alert.idempotency_key:
        context += f" · key `{alert.idempotency_key}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": _cut(f"{alert.title}: {alert.text}", SLACK_TEXT_LIMIT), "blocks": blocks}


def discord_payload(alert: Alert) -> dict[str, Any]:
    fields = [
        {"name": _cut(k, 256), "value": _cut(v or "-", DISCORD_VALUE_LIMIT), "inline": True}
        for k, v in list(alert.fields.items())[:DISCORD_FIELD_LIMIT]
    ]
    footer = f"conveyor · {alert.project}" + (f" · {alert.incident}" if alert.incident else "")
    footer += f" · key {alert.idempotency_key}" if alert.idempotency_key else ""
    embed = {
        "title": _cut(alert.title, 256),
        "description": _cut(alert.text, DISCORD_DESCRIPTION_LIMIT),
        "color": DISCORD_COLOR_ALERT,
        "fields": fields,
        "footer": {"text": footer},
        "timestamp": alert.created_at.isoformat(),
    }
    return {"content": _cut(f"**{alert.title}**", 2000), "embeds": [embed], "allowed_mentions": {"parse": []}}


def webhook_payload(alert: Alert) -> dict[str, Any]:
    return {
        "schema": PAYLOAD_SCHEMA,
        "source": "conveyor",
        "project": alert.project,
        "title": alert.title,
        "text": alert.text,
        "fields": dict(alert.fields),
        "incident": alert.incident,
        "idempotency_key": alert.idempotency_key,
        "created_at": alert.created_at.isoformat(),
    }


@runtime_checkable
class AlertChannelType(Protocol):
    """A kind of alert channel: turns an :class:`Alert` into the JSON body its receiver expects."""

    def payload(self, alert: Alert) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PayloadChannel:
    """An :class:`AlertChannelType` made of one payload function (what every built-in kind is)."""

    build: Callable[[Alert], dict[str, Any]]

    def payload(self, alert: Alert) -> dict[str, Any]:
        return self.build(alert)


SLACK = PayloadChannel(slack_payload)
DISCORD = PayloadChannel(discord_payload)
WEBHOOK = PayloadChannel(webhook_payload)


def channel_type(kind: str) -> AlertChannelType:
    """The registered channel kind ``kind``; ExtensionError in one line if none is, or it is no channel."""
    found = ALERT_CHANNELS.load(kind)
    if not isinstance(found, AlertChannelType):
        raise ExtensionError(
            f"alert channel {kind!r} is a {type(found).__name__}, not an alert channel (no payload())"
        )
    return found


def build_payload(kind: str, alert: Alert) -> dict[str, Any]:
    """The JSON body for a channel of ``kind``."""
    body = channel_type(kind).payload(alert)
    if not isinstance(body, dict):
        raise ExtensionError(f"alert channel {kind!r} built a {type(body).__name__}, not a JSON object")
    return body
