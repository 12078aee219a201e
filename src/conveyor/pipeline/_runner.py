"""``conveyor run``: the PIPELINE stages executed locally, as the workflows run them.

Each stage runs as a subprocess of the very command the generated workflow
runs (``conveyor validate``, ``conveyor train``, …) in the project folder, in
pipeline order, with a live Rich progress display on stderr. The run stops at
the first failure and gives its reason: the stage's typed error, which the
command writes to the outcome file the runner names (:mod:`conveyor.outcome`),
never a line scraped from its stderr.

Up-to-date stages are skipped: after a stage succeeds, a stamp under
``<state_dir>/stamps/`` records a key made of the stage's command, the content
hashes of its inputs (data, schema, ``conveyor.yaml``, the project's code and
Conveyor's version) and the keys of the stages it needs, and the shared state
the stage left (``Stage.state``: the latest training run). A stage whose key
matches its stamp and whose state is still the one it left is up to date: a
one-off ``conveyor train --model-type X`` in between moves the latest run, so
the next ``conveyor run`` trains (or reuses) the configured model again instead
of evaluating and registering X.

Each run has an id (``CONVEYOR_PIPELINE_RUN`` in its stages' environment) that
ties the stage results ``conveyor report`` shows to this one run; a stage
skipped as up to date carries its last result into the run. ``train`` also has its own reuse check (it
answers from an earlier identical MLflow run), so a changed config value that
does not matter to training still costs only seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from conveyor import __version__
from conveyor.outcome import OUTCOME_FILE_VAR, CommandOutcome, read_outcome
from conveyor.project import Project
from conveyor.stage_graph import PIPELINE, Stage, StageInput, select_stages, validate_pipeline
from conveyor.telemetry import TELEMETRY_OPT_OUT

Status = Literal["ok", "skipped", "failed", "not-run"]
_CHUNK = 1 << 20
_CODE_SUFFIXES = (".py", ".toml", ".cfg", ".lock", ".txt")


@dataclass(frozen=True)
class StageOutcome:
    """What happened to one stage of a run."""

    stage: str
    command: str
    status: Status
    seconds: float = 0.0
    exit_code: int | None = None
    reason: str = ""
    log: str | None = None
    result: dict[str, Any] | None = field(default=None, compare=False)  # what the stage's command reported

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "command": self.command,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code,
            "reason": self.reason,
            "log": self.log,
        }


@dataclass(frozen=True)
class RunReport:
    """The outcome of every selected stage, in order."""

    outcomes: tuple[StageOutcome, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> StageOutcome | None:
        return next((o for o in self.outcomes if o.status == "failed"), None)

    @property
    def ok(self) -> bool:
        return self.failed is None

    def to_dict(self) -> dict[str, Any]:
        failed = self.failed
        return {
            "ok": self.ok,
            "stages": [o.to_dict() for o in self.outcomes],
            "failed_stage": failed.stage if failed else None,
            "seconds": round(sum(o.seconds for o in self.outcomes), 3),
        }


def conveyor_program() -> list[str]:
    """How to start ``conveyor``: the console script beside this Python, else ``-m conveyor``."""
    script = Path(sys.executable).parent / "conveyor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "conveyor"]


# -- input fingerprints --------------------------------------------------------------
def _hash_file(digest: Any, path: Path, root: Path) -> None:
    digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)


def _hash_path(digest: Any, path: Path, root: Path, suffixes: tuple[str, ...] | None = None) -> None:
    if path.is_file():
        _hash_file(digest, path, root)
    elif path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if "__pycache__" in child.parts or (suffixes and child.suffix not in suffixes):
                continue
            _hash_file(digest, child, root)
    else:
        digest.update(f"missing:{path}".encode())


def input_fingerprint(project: Project, kind: StageInput) -> str:
    """Content hash of one kind of stage input of ``project``."""
    digest = hashlib.sha256(kind.value.encode())
    root = project.root
    if kind is StageInput.DATA:
        _hash_path(digest, project.data_source, root)
    elif kind is StageInput.SCHEMA:
        _hash_path(digest, project.schema_path, root)
    elif kind is StageInput.CONFIG:
        _hash_path(digest, project.config_file, root)
    elif kind is StageInput.RUN:
        from conveyor.pipeline._runs import RunIndex

        digest.update(str(RunIndex(project).latest_id()).encode())
    else:
        digest.update(__version__.encode())
        _hash_path(digest, root / "src", root, _CODE_SUFFIXES)
        _hash_path(digest, root / "requirements.lock", root)
    return digest.hexdigest()


def stage_keys(project: Project, stages: Sequence[Stage]) -> dict[str, str]:
    """The up-to-date key of every stage (its command, inputs and upstream keys)."""
    cache: dict[StageInput, str] = {}
    keys: dict[str, str] = {}
    for stage in stages:
        parts = {
            "command": list(stage.command),
            "inputs": {k.value: cache.setdefault(k, input_fingerprint(project, k)) for k in stage.inputs},
            "needs": {n: keys.get(n, "") for n in stage.needs},
        }
        keys[stage.name] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return keys


def new_pipeline_run_id() -> str:
    """A sortable, unique id of one ``conveyor run``: UTC time and 8 random hex digits."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


# -- the runner -----------------------------------------------------------------------
def _reason(outcome: CommandOutcome | None, code: int, log: Path) -> str:
    """Why a stage failed, from its outcome file; a stage that wrote none (killed, or not a
    ``conveyor`` command) is named by its exit code, with its output in ``log``."""
    if outcome is not None and outcome.error is not None:
        return str(outcome.error)
    if code < 0:
        return f"killed by signal {-code} (output in {log})"
    return f"exited with code {code} without a reason (output in {log})"


def _stage_environment(stage: Stage) -> str | None:
    """The ``--env`` of a ``deploy`` or ``smoke`` stage, else None."""
    command = stage.command
    if not command or command[0] not in ("deploy", "smoke") or "--env" not in command:
        return None
    at = command.index("--env") + 1
    return command[at] if at < len(command) else None


class Runner:
    """Runs stages of a project in order; constructor only stores the parameters.

    ``program`` is the command the stage arguments are appended to (default:
    ``conveyor``); tests pass a pipeline of small commands instead of PIPELINE.
    """

    def __init__(
        self,
        project: Project,
        stages: Sequence[Stage] = PIPELINE,
        *,
        program: Sequence[str] | None = None,
        force: bool = False,
        console: Console | None = None,
        on_outcome: Callable[[StageOutcome], None] | None = None,
    ) -> None:
        self.project = project
        self.stages = stages
        self.program = program
        self.force = force
        self.console = console
        self.on_outcome = on_outcome

    def _stamp_path(self, stage: Stage) -> Path:
        return self.project.state_dir / "stamps" / f"{stage.name}.json"

    def _state(self, stage: Stage) -> dict[str, str]:
        return {kind.value: input_fingerprint(self.project, kind) for kind in stage.state}

    def _up_to_date(self, stage: Stage, key: str) -> bool:
        try:
            stamp = json.loads(self._stamp_path(stage).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(stamp, dict) or stamp.get("key") != key:
            return False
        if stage.state and stamp.get("state") != self._state(stage):
            return False
        return self._servers_up(stage)

    def _servers_up(self, stage: Stage) -> bool:
        """A deploy or smoke stage is up to date only while its environment's servers answer
        ``/ready`` as this project's environment (a stamp outlives a server that died)."""
        env = _stage_environment(stage)
        if env is None or env not in self.project.settings.deploy.environments:
            return True
        from conveyor.monitoring import environment_problems

        return not environment_problems(self.project, env)

    def _write_stamp(self, stage: Stage, key: str, seconds: float) -> None:
        path = self._stamp_path(stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        stamp = {"key": key, "state": self._state(stage), "seconds": seconds, "finished": time.time()}
        tmp.write_text(json.dumps(stamp), encoding="utf-8")
        tmp.replace(path)

    def _carry_result(self, stage: Stage, pipeline_run: str) -> None:
        """An up-to-date stage's last result belongs to this run too (for ``conveyor report``)."""
        from conveyor.errors import ConveyorError
        from conveyor.reports import load_history, record_stage_result

        try:
            earlier = load_history(self.project, stage.name)
            if earlier:
                payload = {**earlier[-1]["payload"], "up_to_date": True}
                record_stage_result(self.project, stage.name, payload, pipeline_run=pipeline_run)
        except ConveyorError:
            pass  # the report loses this stage's line; the run itself is unaffected

    def _execute(self, stage: Stage, program: list[str], pipeline_run: str) -> StageOutcome:
        from conveyor.reports import PIPELINE_RUN_VAR

        logs = self.project.state_dir / "runs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{stage.name}.log"
        outcome_file = logs / f"{stage.name}.outcome.json"
        outcome_file.unlink(missing_ok=True)
        env = {
            **os.environ,
            **TELEMETRY_OPT_OUT,
            PIPELINE_RUN_VAR: pipeline_run,
            OUTCOME_FILE_VAR: str(outcome_file),
        }
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                [*program, *stage.command],
                cwd=self.project.root,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as exc:
            seconds = time.perf_counter() - started
            return StageOutcome(
                stage.name, stage.command_line, "failed", seconds, None, f"cannot start: {exc}"
            )
        seconds = time.perf_counter() - started
        log.write_text(f"$ {stage.command_line}\n{proc.stdout}{proc.stderr}", encoding="utf-8")
        told = read_outcome(outcome_file)
        result = told.result if told is not None else None
        if proc.returncode == 0:
            return StageOutcome(stage.name, stage.command_line, "ok", seconds, 0, "", str(log), result)
        reason = _reason(told, proc.returncode, log)
        return StageOutcome(
            stage.name, stage.command_line, "failed", seconds, proc.returncode, reason, str(log), result
        )

    def run(self, start: str | None = None, until: str | None = None) -> RunReport:
        """Run the stages from ``start`` to ``until``; stop at the first failure."""
        validate_pipeline(self.stages)
        selected = select_stages(self.stages, start, until)
        keys = stage_keys(self.project, self.stages)
        program = list(self.program) if self.program is not None else conveyor_program()
        outcomes: list[StageOutcome] = []
        pipeline_run = new_pipeline_run_id()
        console = self.console or Console(stderr=True)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            for i, stage in enumerate(selected):
                task = progress.add_task(f"{stage.name}: {stage.command_line}", total=1)
                if not self.force and self._up_to_date(stage, keys[stage.name]):
                    outcome = StageOutcome(stage.name, stage.command_line, "skipped", reason="up to date")
                    progress.update(task, completed=1, description=f"[dim]{stage.name}: up to date[/]")
                    self._carry_result(stage, pipeline_run)
                else:
                    outcome = self._execute(stage, program, pipeline_run)
                    mark = (
                        "[green]ok[/]"
                        if outcome.status == "ok"
                        else f"[red]failed[/] ({escape(outcome.reason)})"
                    )
                    progress.update(task, completed=1, description=f"{stage.name}: {mark}")
                    if outcome.status == "ok":
                        self._write_stamp(stage, keys[stage.name], outcome.seconds)
                progress.stop_task(task)
                outcomes.append(outcome)
                if self.on_outcome is not None:
                    self.on_outcome(outcome)
                if outcome.status == "failed":
                    rest = selected[i + 1 :]
                    outcomes += [StageOutcome(s.name, s.command_line, "not-run") for s in rest]
                    break
        return RunReport(tuple(outcomes))
