"""Fault test: a registered model failing a known share of calls, served by a real `conveyor serve`
process; `conveyor monitor` then exits 1 and names the rate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from faulty_estimator import FailsOnMultiples
from serving_support import register_production

from conveyor.telemetry import TELEMETRY_OPT_OUT
from support import free_port, stop_process, wait_ready

pytestmark = [pytest.mark.xdist_group("serving-cli"), pytest.mark.slow]

K = 4  # every request whose `n` is a multiple of 4 fails: 50 of 200, 25 %
REQUESTS = 200
CONFIG = """
project: {{name: faulty-clf, template: classifier}}
model: {{type: random-forest}}
data: {{target: label}}
serving: {{request_log: {{flush_seconds: 0.1}}}}
monitoring: {{min_requests: 100, retrain: {{action: none}}}}
deploy:
  environments:
    production: {{port: {port}}}
"""


@pytest.fixture
def faulty_project(tmp_path: Path) -> Path:
    """A classifier project whose production version raises on every K-th value of `n`."""
    from conveyor.models import RandomForestModel

    os.environ.update(TELEMETRY_OPT_OUT)
    root = tmp_path / "faulty"
    root.mkdir()
    (root / "conveyor.yaml").write_text(CONFIG.format(port=free_port()))
    rng = np.random.default_rng(1)
    n = rng.integers(1, REQUESTS + 1, 400).astype(float)
    x = rng.normal(size=400)
    data = pl.DataFrame({"n": n, "x": x, "label": (x > 0).astype(int)})
    model = RandomForestModel(target="label", params={"n_estimators": 5, "n_jobs": 1}).fit(data)
    model.estimator_ = FailsOnMultiples(model.estimator_, column=model.feature_names.index("n"), k=K)
    register_production(root, model)
    return root


def test_monitor_exits_1_and_names_the_model_error_rate(faulty_project: Path) -> None:
    from conveyor.project import Project

    port = Project.load(faulty_project).settings.deploy.environments["production"].port
    # the pickled test double must be importable in the server process
    env = {**os.environ, **TELEMETRY_OPT_OUT, "PYTHONPATH": str(Path(__file__).parent)}
    command = [sys.executable, "-m", "conveyor", "--project", str(faulty_project), "serve"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server)
        statuses: list[int] = []
        with httpx.Client(timeout=10) as client:
            for i in range(1, REQUESTS + 1):
                answer = client.post(f"{url}/predict", json={"features": {"n": float(i), "x": 0.5}})
                statuses.append(answer.status_code)
                if answer.status_code == 500:
                    assert answer.json()["error"] == "model_error"
            metrics = client.get(f"{url}/metrics").text
    finally:
        stop_process(server)
    assert statuses.count(500) == REQUESTS // K
    assert statuses.count(200) == REQUESTS - REQUESTS // K
    model_errors = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("conveyor_model_errors_total{")
    )
    assert model_errors == REQUESTS // K

    monitor = subprocess.run(
        [sys.executable, "-m", "conveyor", "--project", str(faulty_project), "monitor", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert monitor.returncode == 1, monitor.stdout + monitor.stderr
    report = json.loads(monitor.stdout)
    errors = next(c for c in report["checks"] if c["name"] == "errors")
    assert errors["status"] == "fail"
    assert errors["details"]["model_errors"] == REQUESTS // K
    assert "server error rate 25.00 %" in errors["summary"]
    assert "model errors 25.00 % (50 of 200)" in errors["summary"]
    assert "Traceback" not in monitor.stderr
