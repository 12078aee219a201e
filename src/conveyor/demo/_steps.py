"""Running one ``conveyor`` command as a demo step: timed, captured, summarised.

The demo drives the real command line in a child process
(``python -m conveyor …``) — the same commands a user or a workflow types,
with their own exit codes and nothing shared with the demo's process (the
demo never imports the CLI: ``conveyor demo`` is a CLI command that uses the
demo, not the other way round). Each step's ``--json`` object is parsed; its
human progress lines (stderr) are kept for the failure message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from conveyor.telemetry import TELEMETRY_OPT_OUT

STEP_TIMEOUT_S = 900  # one command; the longest (a canary under traffic) takes about a minute
EXIT_TIMEOUT = 124  # as timeout(1)


@dataclass
class StepResult:
    """One step of the demo: what ran, how long, its exit code and JSON answer."""

    phase: str
    name: str
    command: str
    exit_code: int
    seconds: float
    payload: dict[str, Any]
    outcome: str = ""
    stderr: str = ""
    expected_exit: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def as_expected(self) -> bool:
        """The step ended the way the scenario plans (a planted failure must fail)."""
        return self.exit_code == self.expected_exit


@dataclass
class StepRunner:
    """Runs ``conveyor`` commands against one project and records the results."""

    project: Path
    console: Console
    results: list[StepResult] = field(default_factory=list)

    def run(
        self,
        phase: str,
        name: str,
        argv: list[str],
        *,
        expect: int = 0,
        describe: Callable[[dict[str, Any]], str] | None = None,
        json_flag: bool = True,
    ) -> StepResult:
        args = ["--project", str(self.project), *argv, *(["--json"] if json_flag else [])]
        started = time.perf_counter()
        code, stdout, stderr = _conveyor(args)
        seconds = time.perf_counter() - started
        payload = _parse(stdout)
        result = StepResult(phase, name, "conveyor " + " ".join(argv), code, seconds, payload)
        result.stderr = stderr
        result.expected_exit = expect
        if code == expect:
            result.outcome = describe(payload) if describe else "ok"
        elif code == 0:  # a planted failure that did not happen breaks the story
            said = describe(payload) if describe else "ok"
            result.outcome = f"exited 0 where the story plants a failure (exit {expect}): {said}"
        else:
            result.outcome = _failure_line(payload, result.stderr)
        self.results.append(result)
        self._print(result)
        return result

    def record(
        self, phase: str, name: str, command: str, seconds: float, outcome: str, ok: bool
    ) -> StepResult:
        """Record a step that is not a ``conveyor`` command (traffic, a check of the story)."""
        result = StepResult(phase, name, command, 0 if ok else 1, seconds, {}, outcome)
        self.results.append(result)
        self._print(result)
        return result

    def _print(self, result: StepResult) -> None:
        expected = result.exit_code == result.expected_exit
        mark = "[green]✓[/green]" if expected else "[red]✗[/red]"
        code = f" exit {result.exit_code}" if result.exit_code else ""
        self.console.print(
            f"{mark} [bold]{result.phase}[/bold] · {result.name:<22} {result.seconds:6.1f} s{code}  "
            f"{result.outcome}",
            highlight=False,
        )


def _conveyor(args: list[str]) -> tuple[int, str, str]:
    """Run ``conveyor *args`` in a child process: (exit code, stdout, stderr)."""
    env = {**os.environ, **TELEMETRY_OPT_OUT}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=STEP_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return EXIT_TIMEOUT, out, f"conveyor: the step did not finish in {STEP_TIMEOUT_S} s"
    return done.returncode, done.stdout, done.stderr


def _parse(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _failure_line(payload: dict[str, Any], stderr: str) -> str:
    error = payload.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    lines = [line for line in stderr.strip().splitlines() if line.startswith("conveyor:")]
    return lines[-1] if lines else (stderr.strip().splitlines() or ["failed"])[-1]
