"""Fixtures of the deployment tests: a project with registered versions, servers cleaned up."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.telemetry import TELEMETRY_OPT_OUT
from support import K, free_port, write_registered_shop


@pytest.fixture(scope="session")
def registered_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1, 2 (healthy ALS), 3 (fails half its calls), 4 (passes its smoke test, then fails half)."""
    root = tmp_path_factory.mktemp("deploy-template")
    write_registered_shop(root)
    return root


@pytest.fixture
def deploy_project(
    registered_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A copy of the template on free ports; every server it starts is stopped afterwards.

    The canary's alpha is 0.001, not the default 0.05: at 0.05 a healthy canary fails by design in
    about 1 run of 20 (up to four metrics per step, two steps), which made the healthy-canary tests
    flaky in CI; the failing versions (half their calls fail) are still found with p < 1e-9.
    """
    from conveyor.deploy import EnvironmentProcess
    from conveyor.project import Project

    for key, value in TELEMETRY_OPT_OUT.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GITHUB_ACTOR", "deploy-test")
    root = tmp_path / "shop"
    shutil.copytree(registered_template, root)
    (root / "conveyor.yaml").write_text(
        f"""
project: {{name: shop}}
model: {{k: {K}}}
serving:
  request_log: {{flush_seconds: 0.5}}
deploy:
  health_timeout_seconds: 90
  environments:
    staging: {{port: {free_port()}}}
    production: {{port: {free_port()}}}
  canary: {{min_requests: 40, interval_seconds: 3, alpha: 0.001}}
  smoke: {{latency_budget_ms: 2000}}
"""
    )
    yield root
    project = Project.load(root)
    for env in project.settings.deploy.environments:
        EnvironmentProcess(project, env).stop(grace=5)
