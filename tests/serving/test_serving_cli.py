"""`conveyor serve` end to end: a registered random forest, served from its registry alias."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from serving_support import register_production

from conveyor.telemetry import TELEMETRY_OPT_OUT
from support import free_port, stop_process, wait_ready

# its servers bind free ports: a group of its own lets it run beside the other serving tests
pytestmark = [pytest.mark.xdist_group("serving-cli"), pytest.mark.slow]

CONFIG = """
project: {{name: shop-clf, template: classifier}}
model: {{type: random-forest}}
data: {{target: label}}
serving: {{request_log: {{flush_seconds: 0.2}}}}
deploy:
  environments:
    production: {{port: {port}}}
"""


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier project whose version 1 carries the alias `production`."""
    from conveyor.models import RandomForestModel

    os.environ.update(TELEMETRY_OPT_OUT)
    root = tmp_path_factory.mktemp("serve-cli")
    (root / "conveyor.yaml").write_text(CONFIG.format(port=free_port()))
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    data = pl.DataFrame({"x": x, "plan": rng.choice(["a", "b"], 400), "label": (x > 0).astype(int)})
    model = RandomForestModel(target="label", params={"n_estimators": 10, "n_jobs": 1}).fit(data)
    register_production(root, model)
    return root


@pytest.fixture
def start_server() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(root: Path, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, **TELEMETRY_OPT_OUT}
        command = [sys.executable, "-m", "conveyor", "--project", str(root), "serve", *args]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        started.append(process)
        return process

    yield start
    for process in started:
        stop_process(process)


def test_serves_the_production_alias_and_logs_requests(
    registered: Path, start_server: Callable[..., subprocess.Popen[str]]
) -> None:
    from conveyor.project import Project
    from conveyor.serving import read_request_log

    port = Project.load(registered).settings.deploy.environments["production"].port
    process = start_server(registered)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process)
    body = httpx.post(f"{url}/predict", json={"features": {"x": 2.5, "plan": "a"}}).json()
    assert (body["model_version"], body["predictions"]) == ("1", [1])
    bad = httpx.post(f"{url}/predict", json={"features": {"x": "high", "plan": "a"}})
    assert (bad.status_code, bad.json()["field"]) == (422, "features.x")
    assert httpx.get(f"{url}/version").json()["primary"] == "1"
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) in (0, -signal.SIGTERM)  # uvicorn shuts down gracefully, then re-raises
    assert "Traceback" not in (process.stderr.read() if process.stderr else "")
    predictions, _ = read_request_log(registered / ".conveyor" / "requests" / "production")
    assert sorted(predictions["status"].to_list()) == [200, 422]


def test_tampered_artifact_is_refused(
    registered: Path, tmp_path: Path, start_server: Callable[..., subprocess.Popen[str]]
) -> None:
    import shutil

    from conveyor.project import Project
    from conveyor.registry import get_version

    copy = tmp_path / "tampered"
    shutil.copytree(registered, copy)
    source = get_version(Project.load(registered), "1").source_dir
    estimator = next(source.glob("estimator*"))
    original = estimator.read_bytes()
    try:
        estimator.write_bytes(original + b"\0")
        process = start_server(registered, "--port", str(free_port()))
        _, err = process.communicate(timeout=60)
    finally:
        estimator.write_bytes(original)
    assert process.returncode == 1
    assert "IntegrityError" in err
    assert "Traceback" not in err


def test_unknown_environment_without_port_is_exit_2(
    make_project: Callable[[str], Path], cli: Callable[..., object]
) -> None:
    result = cli("--project", str(make_project("")), "serve", "--env", "qa")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "--env qa: unknown environment" in result.stderr  # type: ignore[attr-defined]
