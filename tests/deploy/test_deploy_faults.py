"""Fault tests of production: servers and deploys killed for real, rollouts stopped by an operator."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from conveyor.deploy import EnvironmentProcess, Ledger, ServerClient, free_port, read_record
from conveyor.project import Project
from support import wait_until

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.slow]
WAIT_SECONDS = 120  # bound of every wait below: model loads on a loaded 2-core machine


def _process(root: Path, env: str = "production") -> EnvironmentProcess:
    return EnvironmentProcess(Project.load(root), env)


def _state(root: Path) -> dict:
    return httpx.get(_process(root).base_url + "/version", timeout=5).json()


def _ledger(root: Path) -> list[tuple[str, str, str | None]]:
    entries = Ledger.of(Project.load(root)).entries()
    return [(e.action, e.outcome, e.version) for e in entries if e.action != "aliases"]


def _wait_for(predicate, what: str) -> None:
    wait_until(predicate, what, WAIT_SECONDS, poll=0.2)


def _deploy_in_background(root: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "conveyor", "--project", str(root), "deploy", "--env", "production"]
    return subprocess.Popen([*command, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_killed_server_is_restarted_by_its_watchdog_and_rollback_still_works(cli, deploy_project):
    first = cli("--project", deploy_project, "deploy", "--env", "production", "--strategy", "direct",
                "--version", "1", "--json")  # fmt: skip
    assert first.exit_code == 0, first.stderr
    assert first.json()["smoke"]["ok"]  # a direct route to production is smoke-tested too
    second = cli("--project", deploy_project, "deploy", "--env", "production", "--strategy", "blue-green",
                 "--version", "2", "--json")  # fmt: skip
    assert second.exit_code == 0, second.stderr
    production = cli("--project", deploy_project, "status", "--json").json()["environments"]["production"]
    assert production["watchdog"] is not None
    assert (production["expected"]["primary"], production["expected"]["previous"]) == ("2", "1")

    dead = _process(deploy_project).record()
    assert dead is not None
    os.kill(dead.pid, signal.SIGKILL)
    ledger = Ledger.of(Project.load(deploy_project))
    _wait_for(lambda: any(e.action == "restart" for e in ledger.entries()), "the watchdog's restart")
    restart = next(e for e in ledger.entries() if e.action == "restart")
    assert (restart.outcome, restart.version, restart.details["dead_pid"]) == ("ok", "2", dead.pid)
    assert restart.details["previous_preloaded"] == "1"
    state = _state(deploy_project)
    assert state["primary"] == "2"
    assert state["previous"] is None  # a fresh process knows no previous version ...
    assert "1" in [v["version"] for v in state["versions"]]  # ... but the watchdog preloaded it

    back = cli("--project", deploy_project, "rollback", "--env", "production", "--json")
    assert back.exit_code == 0, back.stderr  # ... and the ledger knows it: rollback works
    assert back.json()["reason"] == "switched back from 2 to 1"
    assert _state(deploy_project)["primary"] == "1"


def test_hung_server_is_killed_and_restarted_by_its_watchdog(cli, deploy_project):
    config = deploy_project / "conveyor.yaml"
    text = config.read_text()
    line = next(x for x in text.splitlines() if x.strip().startswith("production:"))
    probe = line.replace("}", ", liveness_failures: 2, liveness_timeout_seconds: 1}")
    config.write_text(text.replace(line, probe))
    first = cli("--project", deploy_project, "deploy", "--env", "production", "--strategy", "direct",
                "--version", "1", "--json")  # fmt: skip
    assert first.exit_code == 0, first.stderr
    hung = _process(deploy_project).record()
    assert hung is not None
    os.kill(hung.pid, signal.SIGSTOP)  # a real hang: the process lives, nothing answers
    try:
        ledger = Ledger.of(Project.load(deploy_project))
        _wait_for(lambda: any(e.action == "restart" for e in ledger.entries()), "the watchdog's restart")
        restart = next(e for e in ledger.entries() if e.action == "restart")
        assert (restart.outcome, restart.version, restart.details["dead_pid"]) == ("ok", "1", hung.pid)
        assert restart.details["hung"] is True
        assert restart.details["failed_probes"] == 2
        assert "hung (2 /health probes failed) and was killed" in restart.reason
        assert not hung.process.alive()  # killed, not left stopped beside its successor
        fresh = _process(deploy_project).record()
        assert fresh is not None
        assert fresh.pid == restart.details["new_pid"] != hung.pid
        assert _state(deploy_project)["primary"] == "1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung.pid, signal.SIGKILL)


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture
def hook(monkeypatch):
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("FAULT_HOOK", f"http://127.0.0.1:{server.server_address[1]}/hook")
    yield _Hook.received
    server.shutdown()
    server.server_close()


def test_monitor_exits_1_and_alerts_when_production_serves_the_wrong_version_or_is_down(
    cli, deploy_project, hook
):
    config = deploy_project / "conveyor.yaml"
    config.write_text(
        config.read_text() + "alerts:\n  channels:\n    - {name: ops, kind: webhook, url_env: FAULT_HOOK}\n"
    )
    assert cli("--project", deploy_project, "deploy", "--env", "production", "--version", "1").exit_code == 0
    healthy = cli("--project", deploy_project, "monitor", "--json")
    checks = {c["name"]: c for c in healthy.json()["checks"]}
    assert checks["readiness"]["status"] == "pass", checks["readiness"]

    process = _process(deploy_project)
    admin = ServerClient(process.base_url, process.token(), environment="production")
    admin.load("2")
    admin.switch("2")  # behind the ledger's back
    wrong = cli("--project", deploy_project, "monitor", "--json")
    assert wrong.exit_code == 1
    readiness = {c["name"]: c for c in wrong.json()["checks"]}["readiness"]
    assert readiness["status"] == "fail"
    assert "serves version 2, the ledger says 1" in readiness["summary"]
    assert any("readiness" in json.dumps(body) for body in hook)  # the alert reached the receiver

    process.stop_watchdog()  # nobody restarts it: production stays down
    record = process.record()
    assert record is not None
    os.kill(record.pid, signal.SIGKILL)
    _wait_for(lambda: process.record() is None, "the server's death")
    down = cli("--project", deploy_project, "monitor", "--json")
    assert down.exit_code == 1
    readiness = {c["name"]: c for c in down.json()["checks"]}["readiness"]
    assert readiness["status"] == "fail"
    assert "down (ConnectError)" in readiness["summary"]
    assert readiness["details"]["down_or_wrong"] == [f"production {process.base_url}"]


def test_rollback_during_a_canary_stops_it_at_once(cli, deploy_project):
    assert cli("--project", deploy_project, "deploy", "--env", "production", "--version", "1").exit_code == 0
    canary = _deploy_in_background(deploy_project, "--strategy", "canary", "--version", "2",
                                   "--steps", "10,50,100", "--interval", "60")  # fmt: skip
    ledger = Ledger.of(Project.load(deploy_project))
    try:
        _wait_for(lambda: any(e.action == "canary-step" for e in ledger.entries()), "the first canary step")
        status = cli("--project", deploy_project, "status", "--json").json()["environments"]["production"]
        running = status["in_progress"]
        assert (running["action"], running["version"], running["weight"], running["pid"]) == (
            "deploy", "2", 10.0, canary.pid,
        )  # fmt: skip
        assert "--strategy canary --version 2" in running["command"]
        back = cli("--project", deploy_project, "rollback", "--env", "production", "--json")
        assert back.exit_code == 0, back.stderr
        body = back.json()
        assert body["stopped"] is True
        assert "deploy of version 2 (canary)" in body["aborted"]
        assert canary.wait(WAIT_SECONDS) == 1  # the rollout stopped with RolloutAborted
    finally:
        canary.kill()
        canary.wait()
    state = _state(deploy_project)
    assert state["primary"] == "1"
    assert [v["version"] for v in state["versions"]] == ["1"]  # the candidate is unloaded
    actions = _ledger(deploy_project)
    assert actions[-2:] == [("deploy", "aborted", "2"), ("rollback", "ok", "1")]
    assert (
        cli("--project", deploy_project, "status", "--json").json()["environments"]["production"][
            "in_progress"
        ]
        is None
    )


def test_killed_blue_green_leaves_no_orphan_and_the_next_deploy_finishes(cli, deploy_project):
    assert cli("--project", deploy_project, "deploy", "--env", "production", "--version", "1").exit_code == 0
    process = _process(deploy_project)
    bluegreen = _deploy_in_background(deploy_project, "--strategy", "blue-green", "--version", "2")
    try:
        _wait_for(process.side_server_file.exists, "the side server of the smoke test")
        orphan = read_record(process.side_server_file)
        assert orphan is not None
        os.kill(bluegreen.pid, signal.SIGKILL)
        bluegreen.wait(10)
    finally:
        bluegreen.kill()
        bluegreen.wait()
    assert orphan.alive()  # the side server outlived its deploy ...
    status = cli("--project", deploy_project, "status", "--json").json()["environments"]["production"]
    assert status["interrupted"]["command"].endswith("--strategy blue-green --version 2")
    assert _state(deploy_project)["primary"] == "1"  # production never switched
    again = cli("--project", deploy_project, "deploy", "--env", "production", "--strategy", "blue-green",
                "--version", "2", "--json")  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert again.json()["recovered"]["orphan_stopped"] == orphan.pid
    assert not orphan.alive()  # ... until the next command reaped it
    assert _state(deploy_project)["primary"] == "2"
    assert ("interrupted", "interrupted", "2") in _ledger(deploy_project)
    status = cli("--project", deploy_project, "status", "--json").json()["environments"]["production"]
    assert status["interrupted"] is None


def test_the_watchdog_gives_up_after_its_restart_limit(make_project):
    port = free_port()
    root = make_project(
        "project: {name: shop}\n"
        "deploy:\n  health_timeout_seconds: 1\n  environments:\n"
        f"    production: {{port: {port}, restart_limit: 2, restart_backoff_seconds: 0}}\n"
    )  # no registered version: every start serves nothing and is never ready
    watchdog = subprocess.run(
        [sys.executable, "-m", "conveyor", "--project", str(root), "watchdog", "--env", "production"],
        capture_output=True, text=True, timeout=WAIT_SECONDS, check=False,
    )  # fmt: skip
    assert watchdog.returncode == 1
    assert [(e.action, e.outcome) for e in Ledger.of(Project.load(root)).entries()] == [
        ("restart", "failed"), ("restart", "failed"), ("restart", "gave-up"),
    ]  # fmt: skip
    assert _process(root).record() is None  # the failed starts left no server behind
