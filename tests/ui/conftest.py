"""The UI tests reuse the deployment tests' project: registered versions, servers cleaned up."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_ui import UI_TOKEN

_spec = importlib.util.spec_from_file_location(
    "deploy_fixtures", Path(__file__).parents[1] / "deploy" / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
_deploy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_deploy)

registered_template = _deploy.registered_template
deploy_project = _deploy.deploy_project


def start_ui(project: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """`conveyor ui --port 0` on ``project`` in its own process; the process and its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "--project", str(project), "ui", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    lines: list[str] = []
    found = None
    while found is None and len(lines) < 50:  # bounded: the address line comes first
        lines.append(process.stderr.readline())
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", lines[-1])
        if not lines[-1]:
            break  # the process ended
    if found is None:
        process.terminate()
        process.wait(timeout=30)
    assert found, "".join(lines)
    return process, found[1]


@pytest.fixture
def ui_url(deploy_project: Path) -> Iterator[str]:
    """`conveyor ui` on the deploy project, its actions on (CONVEYOR_ADMIN_TOKEN is UI_TOKEN)."""
    process, url = start_ui(deploy_project, {**os.environ, "CONVEYOR_ADMIN_TOKEN": UI_TOKEN})
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
