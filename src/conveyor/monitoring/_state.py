"""Monitoring's small JSON state documents: ``monitoring/<name>`` in the project's state store.

Monitoring keeps four pieces of state between runs: the end of the last
checked window (so consecutive runs never count a request twice), the
incident cooldowns of alerts, the outbox of failed deliveries and the time of
the last retraining trigger. Each is one JSON document of the state store
(:mod:`conveyor.state`), replaced atomically, so a crash never leaves half a
document: in the local folder ``<state_dir>/monitoring/<name>.json``, in
PostgreSQL a row every runner of a team shares. Reports, incident files and
the Prometheus text file stay in the local folder (:func:`monitoring_dir`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.project import Project
from conveyor.state import open_store

MONITORING_DIRNAME = "monitoring"
CHECKS_FILE = "last-check"
INCIDENTS_FILE = "incidents"
OUTBOX_FILE = "outbox"
RETRAIN_FILE = "retrain"
ALERTS_LOCK = "monitoring/alerts"
ALERTS_LOCK_WAIT_SECONDS = 600.0  # another sender holds the lock for at most its retries and timeouts


def monitoring_dir(project: Project) -> Path:
    """``<state_dir>/monitoring``, created on first use (local files: reports, logs, metrics)."""
    folder = project.state_dir / MONITORING_DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _key(name: str) -> str:
    return f"{MONITORING_DIRNAME}/{name}"


def read_state(project: Project, name: str) -> dict[str, Any]:
    """The state document ``monitoring/<name>`` (empty when it does not exist)."""
    found = open_store(project).get(_key(name))
    return {} if found is None else found.data


def write_state(project: Project, name: str, data: dict[str, Any]) -> None:
    """Replace the state document ``monitoring/<name>`` with ``data`` atomically."""
    open_store(project).put(_key(name), data)


@contextmanager
def alerts_lock(project: Project) -> Iterator[None]:
    """Serialise alert senders (a scheduled monitor and a canary, on any runner sharing the store)."""
    with open_store(project).lock(ALERTS_LOCK, wait=ALERTS_LOCK_WAIT_SECONDS):
        yield


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp from a state file (naive values are UTC), or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
