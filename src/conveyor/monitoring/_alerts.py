"""``send_alert``: one alert per incident to every configured channel, never lost, never doubled.

"Exactly once" over HTTP is at-least-once delivery plus a key the receiver
can deduplicate on, plus never resending while the first copy may still be
in flight. For each call of :func:`send_alert`:

1. the outbox (:mod:`conveyor.monitoring._outbox`) is flushed first, oldest
   first: pending deliveries are resent, unconfirmed ones only once
   ``alerts.resend_unanswered_after_minutes`` have passed. A channel whose
   resend fails (a 5xx, 429, no connection) is not tried again in this call —
   its later deliveries wait in the outbox behind it, so they reach the
   receiver in order and a dead receiver costs one retry schedule per call,
   not one per queued alert. A resend refused with another 4xx stays in the
   outbox without holding the newer alerts back (their payloads may be fine);
2. an alert with an ``incident`` key already sent within
   ``alerts.cooldown_minutes`` is suppressed on every channel;
3. otherwise the alert gets an idempotency key (one per incident: every copy
   and every resend of it carries the same key, in the ``Idempotency-Key``
   header and in the payload) and goes to each channel of ``alerts.channels``
   (URL read from the environment variable the channel names) with the retry
   rules of :mod:`conveyor.monitoring._delivery`. A request that got no answer
   within ``alerts.timeout_seconds`` is not resent in this call: the receiver
   may still be processing it.

The state store's lock ``monitoring/alerts`` serialises concurrent senders (a scheduled monitor and a canary,
say), so the outbox and the cooldowns stay consistent and no delivery is
resent while another process still waits for its answer.

:func:`send_test_alert` (``conveyor alert test``) checks the channels now: it
neither waits for the lock nor flushes or fills the outbox.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from conveyor.config import AlertChannel, secret_from_env
from conveyor.errors import UsageError
from conveyor.monitoring._channels import Alert, build_payload
from conveyor.monitoring._delivery import PostOutcome, post_json
from conveyor.monitoring._outbox import TEST_ALERT_TITLE, Outbox, OutboxEntry
from conveyor.monitoring._state import (
    INCIDENTS_FILE,
    alerts_lock,
    parse_time,
    read_state,
    utcnow,
    write_state,
)
from conveyor.project import Project

# delivered; suppressed (cooldown); queued (kept in the outbox, resent later);
# unconfirmed (sent, never answered: kept, resent with its key after a grace);
# failed (a test alert that did not get through: never kept)
DeliveryStatus = Literal["delivered", "queued", "suppressed", "unconfirmed", "failed"]
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one alert on one channel."""

    channel: str
    kind: str
    status: DeliveryStatus
    title: str
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None
    from_outbox: bool = False
    key: str | None = None  # the idempotency key the receiver saw

    @property
    def ok(self) -> bool:
        return self.status in ("delivered", "suppressed")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _post(project: Project, channel: AlertChannel, payload: dict[str, Any], key: str) -> PostOutcome:
    """One delivery with the retry rules; a missing URL variable is a failed outcome, not an error."""
    alerts = project.settings.alerts
    try:
        url = secret_from_env(channel.url_env, purpose=f"webhook URL of alert channel {channel.name!r}")
    except UsageError as exc:
        return PostOutcome(False, None, 0, str(exc))
    # the header value is a structured-field string (draft-ietf-httpapi-idempotency-key-header)
    headers = {IDEMPOTENCY_HEADER: f'"{key}"'}
    return post_json(
        url, payload, retries=alerts.retries, timeout=alerts.timeout_seconds, headers=headers,
        resend_unanswered=False,
    )  # fmt: skip


def _attempt(
    project: Project, outbox: Outbox, channel: AlertChannel, entry: OutboxEntry, *, from_outbox: bool
) -> DeliveryResult:
    """Deliver ``entry``, written to the outbox as ``sending`` first, and record how it went."""
    entry.state, entry.sent_at = "sending", utcnow().isoformat()
    outbox.put(entry)  # a sender killed from here on leaves an entry the next one treats as unconfirmed
    outcome = _post(project, channel, entry.payload, entry.key)
    entry.attempts += outcome.attempts
    status: DeliveryStatus
    if outcome.ok:
        outbox.remove(entry)
        status = "delivered"
    else:
        entry.state = "unconfirmed" if outcome.unconfirmed else "pending"
        entry.last_error = outcome.error
        outbox.put(entry)
        status = "unconfirmed" if outcome.unconfirmed else "queued"
    return DeliveryResult(channel.name, channel.kind, status, entry.title, outcome.attempts,
                          outcome.status, outcome.error, from_outbox, entry.key)  # fmt: skip


def _flush(
    project: Project, outbox: Outbox, channels: dict[str, AlertChannel], now: datetime
) -> tuple[list[DeliveryResult], set[str]]:
    """Resend what the outbox holds; returns the results and the channels still failing."""
    grace = timedelta(minutes=project.settings.alerts.resend_unanswered_after_minutes)
    failing: set[str] = set()
    results: list[DeliveryResult] = []
    for entry in list(outbox.entries):
        if entry.state == "sending":  # its sender died waiting for the answer: the receiver may have it
            entry.state = "unconfirmed"
            entry.last_error = "the sender stopped before the receiver answered"
            outbox.put(entry)
        channel = channels.get(entry.channel)
        if channel is None:
            entry.last_error = "channel no longer configured in alerts.channels"
            outbox.put(entry)
            continue
        if entry.channel in failing:
            continue  # behind an earlier delivery that failed again: keeps its place
        sent = parse_time(entry.sent_at)
        if entry.state == "unconfirmed" and sent is not None and now - sent < grace:
            continue  # the receiver may still be processing it
        result = _attempt(project, outbox, channel, entry, from_outbox=True)
        results.append(result)
        if result.status != "delivered" and not _rejected(result):
            failing.add(entry.channel)
    return results, failing


def _rejected(result: DeliveryResult) -> bool:
    """A 4xx other than 429: this payload is refused, which says nothing about the next alert's."""
    return result.http_status is not None and 400 <= result.http_status < 500 and result.http_status != 429


def _alerted_within(
    incidents: dict[str, Any], incident: str | None, now: datetime, cooldown: timedelta
) -> dict[str, Any] | None:
    """The record of ``incident`` when it was alerted within ``cooldown`` (this alert is then suppressed)."""
    if incident is None:
        return None
    record = incidents.get(incident)
    last = parse_time(record.get("sent_at")) if isinstance(record, dict) else None
    return record if record is not None and last is not None and now - last < cooldown else None


def send_alert(
    project: Project,
    title: str,
    text: str,
    fields: dict[str, str] | None = None,
    *,
    incident: str | None = None,
) -> list[DeliveryResult]:
    """Send one alert to every channel of ``alerts.channels``; one result per delivery.

    The results start with the outbox deliveries resent by this call
    (``from_outbox=True``), then one result per configured channel for this
    alert. An empty list means no channel is configured.
    """
    settings = project.settings.alerts
    channels = {c.name: c for c in settings.channels}
    now = utcnow()
    with alerts_lock(project):
        outbox = Outbox.open(project)
        results, failing = _flush(project, outbox, channels, now)
        incidents = read_state(project, INCIDENTS_FILE)
        earlier = _alerted_within(incidents, incident, now, timedelta(minutes=settings.cooldown_minutes))
        if earlier is not None:
            note = f"incident {incident!r} alerted at {earlier['sent_at']} (cooldown)"
            return results + [
                DeliveryResult(c.name, c.kind, "suppressed", title, error=note, key=earlier.get("key"))
                for c in settings.channels
            ]
        key = uuid.uuid4().hex
        alert = Alert(title, text, {str(k): str(v) for k, v in (fields or {}).items()}, incident,
                      project.settings.project.name, now, key)  # fmt: skip
        if (
            incident is not None and settings.channels
        ):  # before sending: a killed sender's incident stays open
            incidents[incident] = {"sent_at": now.isoformat(), "title": title, "key": key}
            write_state(project, INCIDENTS_FILE, incidents)
        for channel in settings.channels:
            payload = build_payload(channel.kind, alert)
            entry = OutboxEntry(channel.name, channel.kind, title, key, payload, now.isoformat(), incident)
            if channel.name in failing:
                entry.last_error = (
                    f"queued behind {outbox.waiting(channel.name)} undelivered alert(s) of this channel"
                )
                outbox.put(entry)
                results.append(DeliveryResult(channel.name, channel.kind, "queued", title,
                                              error=entry.last_error, key=key))  # fmt: skip
                continue
            results.append(_attempt(project, outbox, channel, entry, from_outbox=False))
    return results


def send_test_alert(
    project: Project, text: str, fields: dict[str, str] | None = None
) -> list[DeliveryResult]:
    """A test message to every channel, now: no lock, no outbox flush, and a failure is never kept.

    A test alert waiting behind real ones would test nothing, and one kept in
    the outbox would reach the channel later, when nobody is testing.
    """
    now = utcnow()
    results: list[DeliveryResult] = []
    for channel in project.settings.alerts.channels:
        key = uuid.uuid4().hex
        alert = Alert(TEST_ALERT_TITLE, text, {str(k): str(v) for k, v in (fields or {}).items()}, None,
                      project.settings.project.name, now, key)  # fmt: skip
        outcome = _post(project, channel, build_payload(channel.kind, alert), key)
        status: DeliveryStatus = (
            "delivered" if outcome.ok else "unconfirmed" if outcome.unconfirmed else "failed"
        )
        results.append(DeliveryResult(channel.name, channel.kind, status, TEST_ALERT_TITLE,
                                      outcome.attempts, outcome.status, outcome.error, key=key))  # fmt: skip
    return results
