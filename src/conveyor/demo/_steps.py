"""Running one ``conveyor`` command as a demo step: timed, captured, summarised.

The demo drives the real command line (``conveyor.cli.main``) in this
process — the same commands a user or a workflow types — so that MLflow is
imported once rather than once per step. Each step's ``--json`` object is
parsed; its human progress lines (stderr) are kept for the failure message.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from conveyor.cli import main
from conveyor.cli._output import STATE


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
        out, err = io.StringIO(), io.StringIO()
        started = time.perf_counter()
        saved = (STATE.json, STATE.emitted)  # the demo is itself a command: keep its output state
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(args)
        finally:
            STATE.json, STATE.emitted = saved
        seconds = time.perf_counter() - started
        payload = _parse(out.getvalue())
        result = StepResult(phase, name, "conveyor " + " ".join(argv), code, seconds, payload)
        result.stderr = err.getvalue()
        result.expected_exit = expect
        if code in (0, expect):
            result.outcome = describe(payload) if describe else "ok"
        else:
            result.outcome = _failure_line(payload, result.stderr)
        self.results.append(result)
        self._print(result)
        return result

    def record(self, phase: str, name: str, command: str, seconds: float, outcome: str, ok: bool) -> None:
        """Record a step that is not a ``conveyor`` command (traffic, a check)."""
        result = StepResult(phase, name, command, 0 if ok else 1, seconds, {}, outcome)
        self.results.append(result)
        self._print(result)

    def _print(self, result: StepResult) -> None:
        expected = result.exit_code == result.expected_exit
        mark = "[green]✓[/green]" if expected else "[red]✗[/red]"
        code = f" exit {result.exit_code}" if result.exit_code else ""
        self.console.print(
            f"{mark} [bold]{result.phase}[/bold] · {result.name:<22} {result.seconds:6.1f} s{code}  "
            f"{result.outcome}",
            highlight=False,
        )


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
