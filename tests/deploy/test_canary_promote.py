"""`conveyor canary promote|abort`: a real canary process told to skip its remaining steps through
the state store, a killed canary finished by promote itself, and refusals when nothing runs."""

from __future__ import annotations

import json
import os
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
WAIT_SECONDS = 120  # bound of every wait below: model loads on a loaded 2-core machine
LOAD_CLIENT = Path(__file__).parent / "load_client.py"


def _wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _canary_in_background(root: Path, out: Path) -> subprocess.Popen[bytes]:
    """A canary of version 2 whose windows last a minute: only a promote ends it early."""
    command = [sys.executable, "-m", "conveyor", "--project", str(root), "deploy", "--env", "production",
               "--strategy", "canary", "--version", "2", "--steps", "10,50,100", "--interval", "60",
               "--json"]  # fmt: skip
    with out.open("wb") as fh:
        return subprocess.Popen(command, stdout=fh, stderr=subprocess.DEVNULL)


def _first_step(root: Path) -> None:
    ledger = Ledger.of(Project.load(root))
    _wait_for(lambda: any(e.action == "canary-step" for e in ledger.entries()), "the first canary step")


def _entries(root: Path, action: str):
    return [e for e in Ledger.of(Project.load(root)).entries("production") if e.action == action]


def _served(root: Path) -> dict:
    url = EnvironmentProcess(Project.load(root), "production").base_url
    return httpx.get(url + "/version", timeout=5).json()


def test_promote_tells_the_running_canary_to_go_to_100_percent(cli, deploy_project: Path, tmp_path) -> None:
    root = deploy_project
    assert cli("--project", root, "deploy", "--env", "production", "--version", "1").exit_code == 0
    url = EnvironmentProcess(Project.load(root), "production").base_url
    load_out, stop = tmp_path / "load.json", tmp_path / "load.stop"
    load = subprocess.Popen([sys.executable, str(LOAD_CLIENT), url, "300", "40", str(load_out), str(stop)])
    canary = _canary_in_background(root, tmp_path / "canary.json")
    try:
        _first_step(root)
        running = cli("--project", root, "status", "--json").json()["environments"]["production"]
        assert (running["in_progress"]["pid"], running["in_progress"]["weight"]) == (canary.pid, 10.0)
        done = cli("--project", root, "canary", "promote", "--env", "production", "--why",
                   "the metrics look fine", "--json")  # fmt: skip
        assert done.exit_code == 0, done.stderr
        assert canary.wait(WAIT_SECONDS) == 0  # the canary itself promoted and exited cleanly
        time.sleep(1.0)  # a second of traffic on the promoted version
    finally:
        stop.touch()
        load.wait(60)
        canary.kill()
        canary.wait()
    body = done.json()
    assert (body["outcome"], body["version"], body["step"], body["skipped"]) == ("promoted", "2", 10.0, [50])
    assert body["canary_pid"] == canary.pid
    deployed = json.loads((tmp_path / "canary.json").read_text())
    assert (deployed["outcome"], deployed["promoted"]["step"]) == ("ok", 10.0)
    assert deployed["steps"] == []  # promoted during its first window: no analysis ran

    promote = _entries(root, "promote")[-1]
    assert (promote.who, promote.outcome, promote.version, promote.strategy) == (
        "deploy-test",
        "ok",
        "2",
        "canary",
    )
    assert promote.reason.startswith("promoted by hand at 10 % by deploy-test; steps 50 % skipped")
    assert promote.reason.endswith("; why: the metrics look fine")
    assert (promote.details["step"], promote.details["skipped"], promote.details["stable"]) == (
        10.0,
        [50],
        "1",
    )
    switch = _entries(root, "deploy")[-1]
    assert (switch.outcome, switch.version, switch.strategy) == ("ok", "2", "canary")
    assert switch.time > promote.time
    served = _served(root)
    assert served["primary"] == "2"
    assert {v["version"]: v["share"] for v in served["versions"] if v["share"] > 0} == {"2": 1.0}
    assert get_version_by_alias(Project.load(root), "production").version == "2"
    assert get_version_by_alias(Project.load(root), "previous").version == "1"
    traffic = json.loads(load_out.read_text())
    assert traffic["failures"] == []  # no request failed across the promotion
    assert traffic["versions"].get("2", 0) > 0
    status = cli("--project", root, "status", "--json").json()["environments"]["production"]
    assert status["in_progress"] is None
    assert status["interrupted"] is None
    assert not (root / ".conveyor" / "envs" / "production" / "canary-control.json").exists()


def test_promote_finishes_a_killed_canary(cli, deploy_project: Path, tmp_path) -> None:
    root = deploy_project
    assert cli("--project", root, "deploy", "--env", "production", "--version", "1").exit_code == 0
    canary = _canary_in_background(root, tmp_path / "canary.json")
    try:
        _first_step(root)
        os.kill(canary.pid, signal.SIGKILL)
        canary.wait(30)
    finally:
        canary.kill()
        canary.wait()
    status = cli("--project", root, "status", "--json").json()["environments"]["production"]
    assert (status["interrupted"]["version"], status["interrupted"]["weight"]) == ("2", 10.0)
    done = cli("--project", root, "canary", "promote", "--why", "it was healthy", "--json")
    assert done.exit_code == 0, done.stderr
    body = done.json()
    assert (body["outcome"], body["version"], body["step"], body["skipped"]) == ("promoted", "2", 10.0, [50])
    promote = _entries(root, "promote")[-1]
    assert f"(its canary, pid {canary.pid}, was killed)" in promote.reason
    assert promote.reason.endswith("; why: it was healthy")
    assert _entries(root, "deploy")[-1].outcome == "ok"
    assert not _entries(root, "interrupted")  # finished, not reverted
    served = _served(root)
    assert (served["primary"], served["previous"]) == ("2", "1")
    assert {v["version"]: v["share"] for v in served["versions"] if v["share"] > 0} == {"2": 1.0}
    status = cli("--project", root, "status", "--json").json()["environments"]["production"]
    assert status["interrupted"] is None
    assert status["expected"]["primary"] == "2"
    assert get_version_by_alias(Project.load(root), "production").version == "2"


def test_promote_and_abort_with_nothing_running_are_refused(cli, deploy_project: Path) -> None:
    root = deploy_project
    before = Ledger.of(Project.load(root)).entries()
    refused = cli("--project", root, "canary", "promote", "--why", "ship it")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        "conveyor: NoRolloutRunning: no canary is running in 'production': nothing to promote"
    )
    aborted = cli("--project", root, "canary", "abort", "--env", "production", "--why", "stop", "--json")
    assert aborted.exit_code == 2
    assert aborted.json()["error"]["message"] == "no rollout is running in 'production': nothing to abort"
    no_reason = cli("--project", root, "canary", "promote", "--why", "  ")
    assert no_reason.exit_code == 2
    assert "--why: give the reason" in no_reason.stderr
    unknown = cli("--project", root, "canary", "promote", "--env", "moon", "--why", "x")
    assert unknown.exit_code == 2
    assert Ledger.of(Project.load(root)).entries() == before
