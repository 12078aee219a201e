"""The alert outbox: every real delivery is written down before it is sent.

The state document ``monitoring/outbox`` (``<state_dir>/monitoring/outbox.json``
in the local folder) holds, oldest first, the deliveries
that are not known to be delivered — channel name, idempotency key and
payload, never the URL. An entry is in one of three states:

- ``sending``: written just before the request goes out and removed as soon as
  the receiver answers 2xx. A later sender that finds one knows its sender
  died mid-request (the alerts lock is held for the whole delivery, so a live
  sender's entries are never seen), and the request may have arrived: the
  entry becomes ``unconfirmed``.
- ``pending``: the receiver does not hold it as delivered (connection refused,
  5xx, 429, another 4xx, no URL in the environment): sent again, with the same
  key, on the next flush.
- ``unconfirmed``: sent and never answered (no answer within
  ``alerts.timeout_seconds``, or a dead sender). The receiver may have it, or
  may still be processing it, so it is not resent before
  ``alerts.resend_unanswered_after_minutes`` have passed since it went out;
  then it is resent with the same idempotency key, for the receiver to drop if
  it already has it.

Test alerts never enter the outbox (see ``send_test_alert``); entries of the
old format that hold a test alert are dropped when the file is read, so queued
test alerts cannot flood out later.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from conveyor.monitoring._state import OUTBOX_FILE, read_state, write_state
from conveyor.project import Project

EntryState = Literal["sending", "pending", "unconfirmed"]
TEST_ALERT_TITLE = "Conveyor test alert"
_STATES: tuple[EntryState, ...] = ("sending", "pending", "unconfirmed")


@dataclass
class OutboxEntry:
    """One delivery not known to be delivered (mutable: its state moves under the alerts lock)."""

    channel: str
    kind: str
    title: str
    key: str
    payload: dict[str, Any]
    created_at: str
    incident: str | None = None
    state: EntryState = "pending"
    attempts: int = 0
    sent_at: str | None = None  # when the last request went out
    last_error: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> OutboxEntry | None:
        """An entry read from the file; None for a test alert kept by an older version."""
        if "state" not in raw and raw.get("title") == TEST_ALERT_TITLE:
            return None
        state = raw.get("state")
        return cls(
            channel=str(raw.get("channel", "")),
            kind=str(raw.get("kind", "")),
            title=str(raw.get("title", "")),
            key=str(raw.get("key") or uuid.uuid4().hex),
            payload=dict(raw.get("payload") or {}),
            created_at=str(raw.get("created_at", "")),
            incident=raw.get("incident"),
            state=state if state in _STATES else "pending",
            attempts=int(raw.get("attempts") or 0),
            sent_at=raw.get("sent_at"),
            last_error=raw.get("last_error"),
            id=str(raw.get("id") or uuid.uuid4().hex),
        )


class Outbox:
    """The outbox document, read once under the alerts lock and replaced (atomically) after each change."""

    def __init__(self, project: Project, entries: list[OutboxEntry]) -> None:
        self.project = project
        self.entries = entries

    @classmethod
    def open(cls, project: Project) -> Outbox:
        raw = read_state(project, OUTBOX_FILE).get("entries", [])
        entries = [OutboxEntry.from_dict(e) for e in raw if isinstance(e, dict)]
        return cls(project, [e for e in entries if e is not None])

    def save(self) -> None:
        write_state(self.project, OUTBOX_FILE, {"entries": [e.to_dict() for e in self.entries]})

    def put(self, entry: OutboxEntry) -> None:
        """Add ``entry`` (at the end) or record its new state."""
        if all(e.id != entry.id for e in self.entries):
            self.entries.append(entry)
        self.save()

    def remove(self, entry: OutboxEntry) -> None:
        self.entries = [e for e in self.entries if e.id != entry.id]
        self.save()

    def waiting(self, channel: str) -> int:
        return sum(1 for e in self.entries if e.channel == channel)


def outbox_size(project: Project) -> int:
    """How many deliveries wait in the outbox (pending or unconfirmed)."""
    return len(read_state(project, OUTBOX_FILE).get("entries", []))
