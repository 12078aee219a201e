"""The UI tests reuse the deployment tests' project: registered versions, servers cleaned up."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_ui import UI_TOKEN, start_ui

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
    """`conveyor ui` on the deploy project, its actions on (CONVEYOR_ADMIN_TOKEN is UI_TOKEN)."""
    process, url = start_ui(deploy_project, {**os.environ, "CONVEYOR_ADMIN_TOKEN": UI_TOKEN})
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
