"""What a ``conveyor`` command tells the process that ran it: the structured channel.

The pipeline runner starts each stage as a child ``conveyor`` process with
:data:`OUTCOME_FILE_VAR` naming a file; the command writes one JSON object
there as it exits — its exit code, the typed error (class name and one-line
message) and the result it emitted — and the runner reads that instead of
parsing the child's stderr. This module owns the file's format: the CLI
writes it, :mod:`conveyor.pipeline` reads it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "OUTCOME_FILE_VAR",
    "CommandError",
    "CommandOutcome",
    "json_safe",
    "read_outcome",
    "take_outcome_path",
    "write_outcome",
]

OUTCOME_FILE_VAR = "CONVEYOR_OUTCOME_FILE"
_FORMAT = 1


@dataclass(frozen=True)
class CommandError:
    """A command's typed error: its class name (``CheckFailed``, ``UsageError``, …) and message."""

    type: str
    message: str

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True)
class CommandOutcome:
    """How one command ended: ``exit_code``, its ``error`` (None on success) and the ``result`` it
    reported (the object ``--json`` prints; None when it reported none)."""

    exit_code: int
    error: CommandError | None = None
    result: dict[str, Any] | None = None


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (in nested dicts and lists too)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def take_outcome_path() -> Path | None:
    """The file this command's parent asked for, removed from the environment so that the processes
    this command starts (a server, a watchdog) cannot write over it when they exit later."""
    value = os.environ.pop(OUTCOME_FILE_VAR, "")
    return Path(value) if value else None


def write_outcome(outcome: CommandOutcome, target: Path) -> None:
    """Write ``outcome`` to ``target``, atomically: a reader sees the whole object or no file."""
    document = {
        "format": _FORMAT,
        "exit_code": outcome.exit_code,
        "error": None
        if outcome.error is None
        else {"type": outcome.error.type, "message": outcome.error.message},
        "result": json_safe(outcome.result),
    }
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(document, default=str, allow_nan=False), encoding="utf-8")
    tmp.replace(target)


def read_outcome(path: Path) -> CommandOutcome | None:
    """The outcome a command wrote to ``path``; None when it wrote none (it died first, or the
    program is not ``conveyor``) or the file is not one of ours."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        return None
    code = document.get("exit_code")
    if not isinstance(code, int):
        return None
    raw_error = document.get("error")
    error = None
    if isinstance(raw_error, dict):
        error = CommandError(str(raw_error.get("type", "Error")), str(raw_error.get("message", "")))
    result = document.get("result")
    return CommandOutcome(code, error, result if isinstance(result, dict) else None)
