"""Three `conveyor serve` replicas behind HAProxy on loopback, driven from a folder holding only
the project's conveyor.yaml (the shared state folder and data given by absolute paths).

Layout under one temporary folder:

* ``shared/`` — the shared state (MLflow registry on SQLite, ledger, locks) and the data;
* ``replica-<i>/conveyor.yaml`` — each replica's own folder, as on its own host: the same
  project id and state folder, its own request-log folder (``logs/replica-<i>``);
* ``ops/conveyor.yaml`` and ``ops2/conveyor.yaml`` — where the deploy commands run: the
  replicas by URL, the admin token's variable, the request-log folders to pool;
* ``haproxy.cfg`` — round robin over the three, health-checked on ``/health``, connection
  failures retried on another replica.

The replicas and HAProxy live for the module (starting them is most of a test's time); the
``fleet`` fixture brings every replica back (a test may kill one) and production to version 1
before each test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from conveyor.telemetry import TELEMETRY_OPT_OUT
from support import free_port, stop_process, wait_ready, write_registered_shop

TOKEN_VAR = "FLEET_ADMIN_TOKEN"
TOKEN = "fleet-test-token-not-a-secret"
PROJECT_ID = "shop-fleet01"
REPLICAS = 3
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


def _config(shared: Path, urls: list[str], logs: list[Path], own_log: Path | None = None) -> str:
    request_log: dict[str, object] = {"flush_seconds": 0.5}
    if own_log is not None:
        request_log["dir"] = str(own_log)
    raw = {
        "project": {"name": "shop", "id": PROJECT_ID, "state_dir": str(shared / "state")},
        "data": {"source": str(shared / "data" / "raw" / "interactions.parquet")},
        "model": {"k": 5},
        "serving": {"request_log": request_log},
        "deploy": {
            "health_timeout_seconds": 120,
            "environments": {
                "production": {
                    "replicas": urls,
                    "admin_token_env": TOKEN_VAR,
                    "request_logs": [str(p) for p in logs],
                }
            },
            "canary": {"min_requests": 20, "interval_seconds": 3},
            "smoke": {"latency_budget_ms": 3000},
        },
    }
    return yaml.safe_dump(raw, sort_keys=False)


def _haproxy_cfg(port: int, replica_ports: list[int]) -> str:
    servers = "\n".join(
        f"    server r{i} 127.0.0.1:{p} check inter 200ms fall 1 rise 2" for i, p in enumerate(replica_ports)
    )
    return f"""global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /health
{servers}
"""


@dataclass
class Fleet:
    """The running replicas and load balancer of one test module."""

    root: Path
    ops: Path
    ops2: Path
    ports: list[int]
    lb_url: str
    env: dict[str, str]
    processes: list[subprocess.Popen[str] | None] = field(default_factory=list)
    haproxy: subprocess.Popen[str] | None = None

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.ports]

    def start_replica(self, i: int) -> subprocess.Popen[str]:
        folder = self.root / f"replica-{i}"
        command = [
            sys.executable, "-m", "conveyor", "--project", str(folder), "serve", "--env", "production",
            "--host", "127.0.0.1", "--port", str(self.ports[i]),
        ]  # fmt: skip
        log = (folder / "serve.log").open("a")
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=folder, text=True
        )
        self.processes[i] = process
        return process

    def wait_health(self, i: int) -> None:
        process = self.processes[i]
        assert process is not None
        wait_ready(self.urls[i], process, path="/health")

    def kill(self, i: int) -> None:
        process = self.processes[i]
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def state(self, i: int) -> dict:
        return httpx.get(self.urls[i] + "/version", timeout=5).json()

    def versions(self) -> list[str | None]:
        return [self.state(i)["primary"] for i in range(REPLICAS)]


@pytest.fixture(scope="module")
def fleet_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (Debian package haproxy; `make test-tools` installs it)")
    root = tmp_path_factory.mktemp("fleet")
    shared = root / "shared"
    shared.mkdir()
    # the registry and the data of the shared state, registered from a folder of their own
    write_registered_shop(
        shared, f"project: {{name: shop, id: {PROJECT_ID}, state_dir: state}}\nmodel: {{k: 5}}\n"
    )
    ports = [free_port() for _ in range(REPLICAS)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    logs = [root / "logs" / f"replica-{i}" for i in range(REPLICAS)]
    for i in range(REPLICAS):
        folder = root / f"replica-{i}"
        folder.mkdir()
        (folder / "conveyor.yaml").write_text(_config(shared, urls, logs, own_log=logs[i]))
    for name in ("ops", "ops2"):
        (root / name).mkdir()
        (root / name / "conveyor.yaml").write_text(_config(shared, urls, logs))
    env = {**os.environ, **TELEMETRY_OPT_OUT, TOKEN_VAR: TOKEN}
    fleet = Fleet(root, root / "ops", root / "ops2", ports, "", env, processes=[None] * REPLICAS)
    lb_port = free_port()
    fleet.lb_url = f"http://127.0.0.1:{lb_port}"
    cfg = root / "haproxy.cfg"
    cfg.write_text(_haproxy_cfg(lb_port, ports))
    try:
        for i in range(REPLICAS):
            fleet.start_replica(i)
        for i in range(REPLICAS):
            fleet.wait_health(i)
        fleet.haproxy = subprocess.Popen(
            [HAPROXY, "-f", str(cfg), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        _wait_lb(fleet)
        yield fleet
    finally:
        for process in [*fleet.processes, fleet.haproxy]:
            if process is not None:
                stop_process(process, 10)


def _wait_lb(fleet: Fleet, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(fleet.lb_url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert fleet.haproxy is not None
        assert fleet.haproxy.poll() is None, "haproxy exited"
        time.sleep(0.1)
    raise AssertionError("haproxy did not answer")


def _serves_only(state: dict, version: str) -> bool:
    """Whether a replica's ``/version`` answer gives ``version`` all the traffic."""
    return state["primary"] == version and {
        v["version"]: v["share"] for v in state["versions"] if v["share"]
    } == {version: 1.0}


@pytest.fixture
def fleet(fleet_module: Fleet, monkeypatch: pytest.MonkeyPatch, cli) -> Fleet:
    """Every replica up, production on version 1 everywhere, no rollout left behind."""
    for key, value in TELEMETRY_OPT_OUT.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(TOKEN_VAR, TOKEN)
    monkeypatch.setenv("GITHUB_ACTOR", "fleet-test")
    dead = [i for i, p in enumerate(fleet_module.processes) if p is None or p.poll() is not None]
    for i in dead:
        fleet_module.start_replica(i)
    for i in dead:
        fleet_module.wait_health(i)
    ops = fleet_module.ops
    # the cheapest way back to version 1 (a blue-green deploy starts a side server for its smoke
    # test, ~16 s at a load of 15): nothing when every replica serves it alone, one switch when
    # it is every replica's previous version, else the blue-green deploy
    states = [fleet_module.state(i) for i in range(REPLICAS)]
    if not all(_serves_only(state, "1") for state in states):
        back = None
        if all(state["previous"] == "1" for state in states):
            back = cli("--project", ops, "rollback", "--env", "production", "--json")
        if back is None or back.exit_code != 0 or fleet_module.versions() != ["1"] * REPLICAS:
            result = cli("--project", ops, "deploy", "--env", "production", "--strategy", "blue-green",
                         "--version", "1", "--json")  # fmt: skip
            assert result.exit_code == 0, result.stderr
    for i in range(REPLICAS):
        state = fleet_module.state(i)
        assert state["primary"] == "1"
        assert [v["share"] for v in state["versions"] if v["version"] == "1"] == [1.0]
    return fleet_module
