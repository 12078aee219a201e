"""Deployments against real `conveyor serve` processes on loopback."""

from __future__ import annotations

import html
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
HANG_GUARD_SECONDS = 900  # a bound on a hung process, not a guess at how long a step takes


def _server(root: Path, env: str = "production") -> EnvironmentProcess:
    return EnvironmentProcess(Project.load(root), env)


def _state(root: Path, env: str = "production") -> dict:
    return httpx.get(_server(root, env).base_url + "/version", timeout=5).json()


def _alias(root: Path, alias: str) -> str | None:
    found = get_version_by_alias(Project.load(root), alias)
    return None if found is None else found.version


def _alias_lines(root: Path) -> list[str]:
    """The outcomes of the ledger's ``aliases`` lines, oldest first."""
    return [e.outcome for e in Ledger.of(Project.load(root)).entries() if e.action == "aliases"]


def _wait_alias_lines(root: Path, count: int) -> list[str]:
    """The ``aliases`` outcomes once ``count`` are written — a rollback's detached sync writes its line
    after the command returns. The guard only keeps a hung sync from hanging the test."""
    guard = time.monotonic() + HANG_GUARD_SECONDS
    while len(found := _alias_lines(root)) < count and time.monotonic() < guard:
        time.sleep(0.5)
    return found


def _actions(root: Path) -> list[tuple[str, str, str | None]]:
    """The ledger's (action, outcome, version), without the alias bookkeeping lines."""
    entries = Ledger.of(Project.load(root)).entries()
    return [(e.action, e.outcome, e.version) for e in entries if e.action != "aliases"]


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
    # the load runs until told to stop (the guard is for a test that dies): however slowly this
    # machine deploys, it covers the switch and the rollback
    load = _start_load(deploy_project, seconds=HANG_GUARD_SECONDS, rate=200, out=out)
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
        # one line after each switch, the last one by the rollback's detached sync
        assert _wait_alias_lines(deploy_project, 3) == ["ok", "ok", "ok"]
        assert (_alias(deploy_project, "production"), _alias(deploy_project, "previous")) == ("1", "2")
        time.sleep(1)
        Path(f"{out}.stop").touch()
        assert load.wait(HANG_GUARD_SECONDS) == 0
    finally:
        load.kill()
    report = json.loads(out.read_text())
    assert report["failures"] == []
    assert int(report["statuses"]["200"]) > 1000
    assert set(report["versions"]) == {"1", "2"}  # both served during the run
    assert _actions(deploy_project) == [("deploy", "ok", "1"), ("deploy", "ok", "2"), ("rollback", "ok", "1")]
    status = cli("--project", deploy_project, "status", "--json").json()
    production = status["environments"]["production"]
    assert production["server"]["primary"] == "1"
    assert [d["action"] for d in production["last_deployments"]] == ["deploy", "deploy", "rollback"]
    assert production["last_deployments"][0]["who"] == "deploy-test"


def test_canary_smoke_tests_first_then_analysis_rolls_back_a_degrading_candidate(
    cli, deploy_project, tmp_path
):
    assert cli("--project", deploy_project, "deploy", "--env", "production", "--version", "1").exit_code == 0
    refused = cli(
        "--project", deploy_project, "deploy", "--env", "production", "--strategy", "canary",
        "--version", "3", "--steps", "10,50,100", "--interval", "4", "--json",
    )  # fmt: skip
    assert refused.exit_code == 1, refused.stderr  # fails half its calls: its smoke test catches it
    assert refused.json()["error"]["type"] == "SmokeTestFailed"
    assert _actions(deploy_project)[-1] == ("deploy", "failed", "3")
    assert [v["version"] for v in _state(deploy_project)["versions"]] == ["1"]  # never loaded
    load = _start_load(deploy_project, seconds=HANG_GUARD_SECONDS, rate=120, out=tmp_path / "load.json")
    try:
        result = cli(
            "--project", deploy_project, "deploy", "--env", "production", "--strategy", "canary",
            "--version", "4", "--steps", "10,50,100", "--interval", "4", "--json",
        )  # fmt: skip
    finally:
        load.kill()
        load.wait()
    assert result.exit_code == 1, result.stderr  # version 4 passes its smoke test, then degrades
    body = result.json()
    assert body["smoke"]["ok"]
    assert body["error"]["type"] == "CanaryFailed"
    assert body["outcome"] == "rolled-back"
    assert "error_rate" in body["reason"]
    state = _state(deploy_project)
    assert state["primary"] == "1"
    assert [v["version"] for v in state["versions"]] == ["1"]  # the candidate is unloaded
    assert _alias(deploy_project, "production") == "1"
    assert _actions(deploy_project)[-1] == ("deploy", "rolled-back", "4")


def _stepped(ledger: Ledger) -> bool:
    return any(e.action == "canary-step" for e in ledger.entries())


def test_controller_killed_mid_deploy_leaves_production_serving(cli, deploy_project, tmp_path):
    assert cli("--project", deploy_project, "deploy", "--env", "production", "--version", "1").exit_code == 0
    # an analysis window far longer than the test: the controller sits at its first step (10 %)
    # until it is killed, however slowly this machine runs the steps below
    log = tmp_path / "controller.log"
    with log.open("w") as stderr:
        controller = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "--project", str(deploy_project), "deploy", "--env",
             "production", "--strategy", "canary", "--version", "2", "--interval", "3600"],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    ledger = Ledger.of(Project.load(deploy_project))
    try:
        # until the controller has set its first step, or has ended (a failure: its log says why);
        # the guard only keeps a hung controller from hanging the test
        guard = time.monotonic() + HANG_GUARD_SECONDS
        while not _stepped(ledger) and controller.poll() is None and time.monotonic() < guard:
            time.sleep(0.2)
        assert _stepped(ledger), f"exit {controller.poll()}: {log.read_text()[-3000:]}"
        second = cli("--project", deploy_project, "deploy", "--env", "production", "--version", "2", "--json")
        assert second.exit_code == 1
        assert second.json()["error"]["type"] == "DeployConflict"
        assert f"pid {controller.pid}" in second.json()["error"]["message"]
        assert controller.poll() is None, log.read_text()[-3000:]  # still at its first step
        controller.send_signal(signal.SIGKILL)
        controller.wait(HANG_GUARD_SECONDS)
    finally:
        controller.kill()
        controller.wait()
    left = cli("--project", deploy_project, "status", "--json").json()["environments"]["production"]
    assert left["in_progress"] is None
    interrupted = left["interrupted"]  # visible: what, at which weight, since when, which command
    assert (interrupted["version"], interrupted["weight"], interrupted["pid"]) == ("2", 10.0, controller.pid)
    assert interrupted["weight_since"]
    assert interrupted["command"].startswith("conveyor deploy --env production")
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


def test_status_names_servers_that_disagree_with_the_ledger_and_a_deploy_puts_them_right(cli, deploy_project):
    from conveyor.deploy import Environment

    root = deploy_project
    for version in ("1", "2"):
        assert cli("--project", root, "deploy", "--env", "production", "--version", version).exit_code == 0
    calm = cli("--project", root, "status", "--json").json()["environments"]["production"]
    assert calm["mismatch"] is None
    # a switch behind the ledger's back (by hand through the admin API, or a switch whose ledger
    # line was lost with its store's answer): the servers serve 1, the ledger says 2
    Environment.open(Project.load(root), "production").client.switch("1")
    assert _state(root)["primary"] == "1"
    status = cli("--project", root, "status", "--json").json()["environments"]["production"]
    assert status["mismatch"] == (
        "production serves 1 as its primary version but the ledger expects 2: `conveyor deploy --env "
        "production --version 2` puts the servers back in line with the ledger, a deploy of another "
        "version records a new line"
    )
    text = cli("--project", root, "status")
    assert "mismatch: production serves 1 as its primary version" in " ".join(text.stdout.split())
    from fastapi.testclient import TestClient

    from conveyor.ui import create_ui_app

    page = TestClient(create_ui_app(Project.load(root))).get("/environments").text
    assert f"data-mismatch>{html.escape(status['mismatch'], quote=False)}</p>" in page
    put_right = cli("--project", root, "deploy", "--env", "production", "--version", "2", "--json")
    assert put_right.exit_code == 0, put_right.stderr
    assert _state(root)["primary"] == "2"
    assert cli("--project", root, "status", "--json").json()["environments"]["production"]["mismatch"] is None
