"""`conveyor judge`: the canary verdict Argo Rollouts and Flagger call, from real servers' request logs.

As under Argo Rollouts, stable and canary are separate server processes of one environment
(pods of two ReplicaSets), each serving one registry version and writing the environment's
request log; the judge pools them and answers with Conveyor's own canary analysis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conveyor.telemetry import TELEMETRY_OPT_OUT
from support import free_port, stop_process, wait_ready

REQUESTS = {"1": 120, "2": 100, "3": 100}  # per version: the stable one answers most


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        stop_process(process)


def _start(root: Path, started: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **TELEMETRY_OPT_OUT}
    command = [sys.executable, "-m", "conveyor", "--project", str(root), *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    started.append(process)
    return process


def _traffic(url: str, n: int) -> int:
    errors = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for user in range(n):
            errors += client.post("/recommend", json={"user_id": user % 300, "k": 5}).status_code != 200
    return errors


def test_judge_fails_a_failing_canary_and_passes_a_healthy_one(deploy_project: Path, processes) -> None:
    root = deploy_project
    servers = {v: free_port() for v in REQUESTS}
    started = {
        v: _start(root, processes, "serve", "--env", "production", "--port", str(port), "--model-version", v)
        for v, port in servers.items()
    }
    judge_port = free_port()
    judge = _start(root, processes, "judge", "--port", str(judge_port))
    for v, port in servers.items():
        wait_ready(f"http://127.0.0.1:{port}", started[v])
    wait_ready(f"http://127.0.0.1:{judge_port}", judge, path="/health")
    with ThreadPoolExecutor(3) as pool:
        futures = {v: pool.submit(_traffic, f"http://127.0.0.1:{servers[v]}", n) for v, n in REQUESTS.items()}
        errors = {v: future.result() for v, future in futures.items()}
    assert errors["1"] == errors["2"] == 0
    assert errors["3"] > 20  # version 3 fails half its calls (the drill model)
    for process in started.values():  # the request log is flushed on a clean stop
        stop_process(process)

    url = f"http://127.0.0.1:{judge_port}"
    failing = httpx.get(f"{url}/v1/canary", params={"env": "production", "candidate": "3"}, timeout=60)
    assert failing.status_code == 200
    body = failing.json()
    assert body["verdict"] == "fail"
    assert body["baseline"] == "1"  # inferred: the other version that answered the most requests
    assert body["arms"]["candidate"]["requests"] == 100
    assert body["arms"]["candidate"]["users"] == 100  # users 0..99: the unit of the same analysis
    assert body["arms"]["baseline"]["users"] == 120
    assert body["arms"]["candidate"]["errors"] == errors["3"]
    assert body["arms"]["baseline"] == {
        **body["arms"]["baseline"],
        "version": "1",
        "requests": 120,
        "errors": 0,
    }
    error_metric = next(m for m in body["metrics"] if m["name"] == "error_rate")
    assert error_metric["verdict"] == "fail"
    assert error_metric["extra"]["increase_lower_bound"] > 0.01  # the interval's lower bound

    healthy = httpx.get(
        f"{url}/v1/canary", params={"candidate": "2", "baseline": "1", "window": "30m"}, timeout=60
    )
    assert healthy.json()["verdict"] == "pass", healthy.json()

    # Flagger's webhook: 200 lets the canary advance, any other status counts as a failed check
    hook = {"name": "shop", "namespace": "prod", "phase": "Progressing"}
    passed = httpx.post(
        f"{url}/v1/flagger", json={**hook, "metadata": {"candidate": "2", "baseline": "1"}}, timeout=60
    )
    assert (passed.status_code, passed.json()["verdict"]) == (200, "pass")
    failed = httpx.post(f"{url}/v1/flagger", json={**hook, "metadata": {"candidate": "3"}}, timeout=60)
    assert (failed.status_code, failed.json()["verdict"]) == (412, "fail")

    unseen = httpx.get(f"{url}/v1/canary", params={"candidate": "9", "baseline": "1"}, timeout=60).json()
    assert unseen["verdict"] == "inconclusive"
    assert "too few requests" in unseen["reason"]

    for params, message in [
        ({"candidate": "3", "env": "qa"}, "unknown environment (known: production, staging)"),
        ({"env": "production"}, "candidate: the candidate's model version is required"),
        ({"candidate": "3", "window": "soon"}, "window 'soon': expected a duration"),
    ]:
        bad = httpx.get(f"{url}/v1/canary", params=params, timeout=60)
        assert bad.status_code == 400, bad.text
        assert message in bad.json()["detail"]
    bad = httpx.post(f"{url}/v1/flagger", content=b"not json", timeout=60)
    assert bad.status_code == 400
