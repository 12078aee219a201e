"""The import contracts of docs/architecture.md hold, and they fail on a planted violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed")


def _lint(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_code_keeps_its_import_contracts() -> None:
    done = _lint(ROOT, ROOT / "src")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_a_planted_violation_breaks_the_contracts(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "src" / "conveyor", tmp_path / "src" / "conveyor")
    planted = tmp_path / "src" / "conveyor" / "monitoring" / "_planted.py"
    planted.write_text(
        "from conveyor.cli._output import STATE\n"
        "from conveyor.pipeline import PIPELINE\n"
        "from conveyor.serving import create_app\n"
    )
    done = _lint(tmp_path, tmp_path / "src")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    out = " ".join(done.stdout.split())  # the report wraps long lines
    assert "conveyor.monitoring is not allowed to import conveyor.cli" in out
    assert "conveyor.monitoring is not allowed to import conveyor.pipeline" in out
    assert "conveyor.monitoring is not allowed to import conveyor.serving" in out
    assert "conveyor.monitoring._planted -> conveyor.cli._output" in out  # a private module
    assert "conveyor.monitoring is not allowed to import fastapi" in out
    assert "No cycles are allowed in conveyor." in out  # cli -> monitoring -> cli
    assert "Contracts: 1 kept, 4 broken." in out  # only serving ⟂ deploy still holds
