"""Where command output goes.

``--json``: exactly one JSON object on stdout, nothing else there. Otherwise a
human rendering (Rich) on stdout. Progress and log lines always go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from conveyor.outcome import json_safe

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@dataclass
class OutputState:
    """Set once per invocation by the command that runs."""

    json: bool = False
    emitted: bool = False
    result: dict[str, Any] | None = None  # what the command reported (for the outcome file)


STATE = OutputState()


def to_json(payload: dict[str, Any]) -> str:
    return json.dumps(json_safe(payload), default=str, allow_nan=False)


def emit(payload: dict[str, Any], human: Callable[[Console], None] | None = None) -> None:
    """Report a command's result: JSON on stdout, or the human rendering."""
    if STATE.emitted:
        return
    STATE.emitted = True
    STATE.result = payload
    if STATE.json:
        sys.stdout.write(to_json(payload) + "\n")
        sys.stdout.flush()
    elif human is not None:
        human(out)
    else:
        out.print_json(to_json(payload))


def note(message: str) -> None:
    """A progress line for humans, on stderr (never pollutes --json)."""
    err.print(message, highlight=False)
