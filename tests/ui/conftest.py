"""The UI tests reuse the deployment tests' project: registered versions, servers cleaned up."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "deploy_fixtures", Path(__file__).parents[1] / "deploy" / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
_deploy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_deploy)

registered_template = _deploy.registered_template
deploy_project = _deploy.deploy_project


@pytest.fixture
def ui_url(deploy_project: Path) -> Iterator[str]:
    """`conveyor ui --port 0` on the project, in its own process; its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "--project", str(deploy_project), "ui", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines: list[str] = []
        found = None
        while found is None and len(lines) < 50:  # bounded: the address line comes first
            lines.append(process.stderr.readline())
            found = re.search(r"on (http://127\.0\.0\.1:\d+)", lines[-1])
            if not lines[-1]:
                break  # the process ended
        assert found, "".join(lines)
        yield found[1]
    finally:
        process.terminate()
        process.wait(timeout=30)
