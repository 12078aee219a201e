"""Deployments against real `conveyor serve` processes on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conveyor.deploy import EnvironmentProcess, Ledger
from conveyor.project import Project
from conveyor.registry import get_version_by_alias

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.slow]
HERE = Path(__file__).parent


def _server(root: Path, env: str = "production") -> EnvironmentProcess:
    return EnvironmentProcess(Project.load(root), env)


def _state(root: Path, env: str = "production") -> dict:
    return httpx.get(_server(root, env).base_url + "/version", timeout=5).json()


def _alias(root: Path, alias: str) -> str | None:
    found = get_version_by_alias(Project.load(root), alias)
    return None if found is None else found.version


def _start_load(root: Path, seconds: float, rate: float, out: Path) -> subprocess.Popen[bytes]:
    """Load until ``seconds`` pass or ``out`` + ".stop" exists."""
    url = _server(root).base_url
    stop = f"{out}.stop"
    args = [sys.executable, str(HERE / "load_client.py"), url, str(seconds), str(rate), str(out), stop]
    return subprocess.Popen(args)


def test_staging_deploy_and_smoke(cli, deploy_project):
    result = cli("--project", deploy_project, "deploy", "--env", "staging", "--version", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["outcome"] == "ok"
    assert _alias(deploy_project, "staging") == "1"
    smoke = cli("--project", deploy_project, "smoke", "--env", "staging", "--json")
    assert smoke.exit_code == 0, smoke.stdout
    assert {c["name"] for c in smoke.json()["checks"]} >= {"health", "ready", "contract", "sanity", "latency"}
    assert not _server(deploy_project, "production").running()  # production untouched


def test_blue_green_switch_and_rollback_under_load_drop_nothing(cli, deploy_project, tmp_path):
    first = cli("--project", deploy_project, "deploy", "--env", "production", "--version", "1", "--json")
    assert first.exit_code == 0, first.stderr
    out = tmp_path / "load.json"
    load = _start_load(deploy_project, seconds=60, rate=200, out=out)
    try:
        time.sleep(2)
        switched = cli(
            "--project", deploy_project, "deploy", "--env", "production", "--strategy", "blue-green",
            "--version", "2", "--json",
        )  # fmt: skip
        assert switched.exit_code == 0, switched.stderr
        assert switched.json()["smoke"]["ok"]
        assert _state(deploy_project)["primary"] == "2"
        assert (_alias(deploy_project, "production"), _alias(deploy_project, "previous")) == ("2", "1")
        time.sleep(2)
        back = cli("--project", deploy_project, "rollback", "--env", "production", "--json")
        assert back.exit_code == 0, back.stderr
        assert back.json()["switch_ms"] < 1000
        state = _state(deploy_project)
        assert (state["primary"], state["previous"]) == ("1", "2")
        assert (_alias(deploy_project, "production"), _alias(deploy_project, "previous")) == ("1", "2")
        time.sleep(1)
        Path(f"{out}.stop").touch()
        assert load.wait(30) == 0
    finally:
        load.kill()
    report = json.loads(out.read_text())
    assert report["failures"] == []
    assert int(report["statuses"]["200"]) > 1000
    assert set(report["versions"]) == {"1", "2"}  # both served during the run
    actions = [(e.action, e.outcome, e.version) for e in Ledger.of(Project.load(deploy_project)).entries()]
    assert actions == [("deploy", "ok", "1"), ("deploy", "ok", "2"), ("rollback", "ok", "1")]
    status = cli("--project", deploy_project, "status", "--json").json()
    production = status["environments"]["production"]
    assert production["server"]["primary"] == "1"
    assert [d["action"] for d in production["last_deployments"]] == ["deploy", "deploy", "rollback"]
    assert production["last_deployments"][0]["who"] == "deploy-test"


def test_broken_candidate_canary_is_rolled_back(cli, deploy_project, tmp_path):
    assert cli("--project", deploy_project, "deploy", "--env", "production", "--version", "1").exit_code == 0
    load = _start_load(deploy_project, seconds=40, rate=120, out=tmp_path / "load.json")
    try:
        result = cli(
            "--project", deploy_project, "deploy", "--env", "production", "--strategy", "canary",
            "--version", "3", "--steps", "10,50,100", "--interval", "4", "--json",
        )  # fmt: skip
    finally:
        load.kill()
        load.wait()
    assert result.exit_code == 1, result.stderr
    body = result.json()
    assert body["error"]["type"] == "CanaryFailed"
    assert body["outcome"] == "rolled-back"
    assert "error_rate" in body["reason"]
    state = _state(deploy_project)
    assert state["primary"] == "1"
    assert [v["version"] for v in state["versions"]] == ["1"]  # the candidate is unloaded
    assert _alias(deploy_project, "production") == "1"
    last = Ledger.of(Project.load(deploy_project)).entries()[-1]
    assert (last.action, last.outcome, last.version) == ("deploy", "rolled-back", "3")


def test_controller_killed_mid_deploy_leaves_production_serving(cli, deploy_project, tmp_path):
    assert cli("--project", deploy_project, "deploy", "--env", "production", "--version", "1").exit_code == 0
    controller = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "--project", str(deploy_project), "deploy", "--env", "production",
         "--strategy", "canary", "--version", "2", "--interval", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ledger = Ledger.of(Project.load(deploy_project))
    try:
        deadline = time.monotonic() + 60
        while not any(e.action == "canary-step" for e in ledger.entries()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any(e.action == "canary-step" for e in ledger.entries())
        second = cli("--project", deploy_project, "deploy", "--env", "production", "--version", "2", "--json")
        assert second.exit_code == 1
        assert second.json()["error"]["type"] == "DeployConflict"
        assert f"pid {controller.pid}" in second.json()["error"]["message"]
        controller.send_signal(signal.SIGKILL)
        controller.wait(10)
    finally:
        controller.kill()
        controller.wait()
    state = _state(deploy_project)
    assert state["primary"] == "1"  # the old version still serves (10 % on the candidate at most)
    back = cli("--project", deploy_project, "rollback", "--env", "production", "--json")
    assert back.exit_code == 0, back.stderr
    assert "interrupted" in back.json()["recovered"]
    state = _state(deploy_project)
    assert state["primary"] == "1"
    assert all(v["share"] == 0 for v in state["versions"] if v["version"] != "1")
    entries = [(e.action, e.outcome) for e in ledger.entries()]
    assert ("interrupted", "interrupted") in entries
    again = cli("--project", deploy_project, "deploy", "--env", "production", "--strategy", "blue-green",
                "--version", "2", "--json")  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert _state(deploy_project)["primary"] == "2"
