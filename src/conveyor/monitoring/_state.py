"""Monitoring's small JSON state files under ``<state_dir>/monitoring/``.

Monitoring keeps four pieces of state between runs: the end of the last
checked window (so consecutive runs never count a request twice), the
incident cooldowns of alerts, the outbox of failed deliveries and the time of
the last retraining trigger. Each is one small JSON document written
atomically (temporary file + rename), so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.errors import InputError
from conveyor.project import Project

MONITORING_DIRNAME = "monitoring"
CHECKS_FILE = "last-check.json"
INCIDENTS_FILE = "incidents.json"
OUTBOX_FILE = "outbox.json"
RETRAIN_FILE = "retrain.json"


def monitoring_dir(project: Project) -> Path:
    """``<state_dir>/monitoring``, created on first use."""
    folder = project.state_dir / MONITORING_DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def read_state(path: Path) -> dict[str, Any]:
    """The JSON object stored at ``path`` (empty when the file does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InputError(f"{path}: cannot read monitoring state: {exc.strerror}", path=str(path)) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: monitoring state is not valid JSON (line {exc.lineno}); delete the file to reset it",
            path=str(path),
        ) from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: monitoring state must be a JSON object", path=str(path))
    return data


def write_state(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
