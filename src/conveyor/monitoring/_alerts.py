"""``send_alert``: one alert to every configured channel, suppressed, retried, never lost.

For each call:

1. deliveries that failed earlier (the outbox, ``<state_dir>/monitoring/
   outbox.json``) are tried again first;
2. an alert with an ``incident`` key already sent within
   ``alerts.cooldown_minutes`` is suppressed on every channel;
3. otherwise the alert goes to each channel of ``alerts.channels`` (URL read
   from the environment variable the channel names), with the retry rules of
   :mod:`conveyor.monitoring._delivery`; a delivery that still fails is kept
   in the outbox with its payload — never with its URL.

A file lock serialises concurrent senders (a scheduled monitor and a canary,
say), so the outbox and the cooldowns stay consistent.
"""

from __future__ import annotations

import fcntl
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Literal

from conveyor.config import AlertChannel, AlertKind, secret_from_env
from conveyor.errors import UsageError
from conveyor.monitoring._channels import Alert, build_payload
from conveyor.monitoring._delivery import post_json
from conveyor.monitoring._state import (
    INCIDENTS_FILE,
    OUTBOX_FILE,
    monitoring_dir,
    parse_time,
    read_state,
    utcnow,
    write_state,
)
from conveyor.project import Project

DeliveryStatus = Literal["delivered", "queued", "suppressed"]
_LOCK_FILE = "alerts.lock"


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one alert on one channel (``queued``: failed, kept in the outbox)."""

    channel: str
    kind: str
    status: DeliveryStatus
    title: str
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None
    from_outbox: bool = False

    @property
    def ok(self) -> bool:
        return self.status != "queued"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def _alerts_lock(project: Project) -> Iterator[None]:
    path = monitoring_dir(project) / _LOCK_FILE
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _deliver(
    project: Project, channel: AlertChannel, payload: dict[str, Any]
) -> tuple[bool, int, int | None, str | None]:
    """(ok, attempts, http status, error) of one channel delivery."""
    alerts = project.settings.alerts
    try:
        url = secret_from_env(channel.url_env, purpose=f"webhook URL of alert channel {channel.name!r}")
    except UsageError as exc:
        return False, 0, None, str(exc)
    outcome = post_json(url, payload, retries=alerts.retries, timeout=alerts.timeout_seconds)
    return outcome.ok, outcome.attempts, outcome.status, outcome.error


def _flush_outbox(project: Project, channels: dict[str, AlertChannel]) -> list[DeliveryResult]:
    path = monitoring_dir(project) / OUTBOX_FILE
    entries: list[dict[str, Any]] = list(read_state(path).get("entries", []))
    if not entries:
        return []
    results: list[DeliveryResult] = []
    kept: list[dict[str, Any]] = []
    for entry in entries:
        channel = channels.get(str(entry.get("channel")))
        title = str(entry.get("title", ""))
        if channel is None:
            entry["last_error"] = "channel no longer configured in alerts.channels"
            kept.append(entry)
            continue
        ok, attempts, status, error = _deliver(project, channel, dict(entry.get("payload", {})))
        result = DeliveryResult(
            channel.name, channel.kind.value, "delivered" if ok else "queued", title,
            attempts, status, error, from_outbox=True,
        )  # fmt: skip
        results.append(result)
        if not ok:
            entry["attempts"] = int(entry.get("attempts", 0)) + attempts
            entry["last_error"] = error
            kept.append(entry)
    write_state(path, {"entries": kept})
    return results


def _queue(
    project: Project, channel: AlertChannel, alert: Alert, payload: dict[str, Any], result: DeliveryResult
) -> None:
    path = monitoring_dir(project) / OUTBOX_FILE
    entries = list(read_state(path).get("entries", []))
    entries.append(
        {
            "id": uuid.uuid4().hex,
            "channel": channel.name,
            "kind": channel.kind.value,
            "title": alert.title,
            "incident": alert.incident,
            "created_at": alert.created_at.isoformat(),
            "attempts": result.attempts,
            "last_error": result.error,
            "payload": payload,
        }
    )
    write_state(path, {"entries": entries})


def outbox_size(project: Project) -> int:
    """How many failed deliveries wait in the outbox."""
    return len(read_state(monitoring_dir(project) / OUTBOX_FILE).get("entries", []))


def send_alert(
    project: Project,
    title: str,
    text: str,
    fields: dict[str, str] | None = None,
    *,
    incident: str | None = None,
) -> list[DeliveryResult]:
    """Send one alert to every channel of ``alerts.channels``; one result per delivery.

    The results start with the outbox deliveries retried by this call
    (``from_outbox=True``), then one result per configured channel for this
    alert. An empty list means no channel is configured.
    """
    settings = project.settings.alerts
    channels = {c.name: c for c in settings.channels}
    now = utcnow()
    alert = Alert(title, text, {str(k): str(v) for k, v in (fields or {}).items()}, incident,
                  project.settings.project.name, now)  # fmt: skip
    with _alerts_lock(project):
        results = _flush_outbox(project, channels)
        incidents_path = monitoring_dir(project) / INCIDENTS_FILE
        incidents = read_state(incidents_path)
        if incident is not None:
            last = parse_time(incidents.get(incident, {}).get("sent_at"))
            cooldown = timedelta(minutes=settings.cooldown_minutes)
            if last is not None and now - last < cooldown:
                return results + [
                    DeliveryResult(c.name, c.kind.value, "suppressed", title,
                                   error=f"incident {incident!r} alerted at {last.isoformat()} (cooldown)")
                    for c in settings.channels
                ]  # fmt: skip
        for channel in settings.channels:
            payload = build_payload(AlertKind(channel.kind), alert)
            ok, attempts, status, error = _deliver(project, channel, payload)
            result = DeliveryResult(channel.name, channel.kind.value, "delivered" if ok else "queued",
                                    title, attempts, status, error)  # fmt: skip
            if not ok:
                _queue(project, channel, alert, payload, result)
            results.append(result)
        if incident is not None and settings.channels:
            incidents[incident] = {"sent_at": now.isoformat(), "title": title}
            write_state(incidents_path, incidents)
    return results
