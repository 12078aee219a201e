"""`conveyor env start|stop|restart|logs` against a real local server on loopback."""

from __future__ import annotations

import socket

import httpx
import pytest

from conveyor.deploy import EnvironmentProcess, Ledger
from conveyor.project import Project

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.slow]


def test_stop_start_restart_and_logs_of_a_local_environment(cli, deploy_project):
    root = deploy_project
    assert cli("--project", root, "deploy", "--env", "staging", "--version", "1").exit_code == 0
    process = EnvironmentProcess(Project.load(root), "staging")
    first_pid = process.record().pid

    stopped = cli("--project", root, "env", "stop", "--env", "staging", "--json")
    assert stopped.exit_code == 0, stopped.stderr
    assert stopped.json()["outcome"] == "stopped"
    assert not process.running()
    assert process.watchdog() is None  # stopped first: nothing restarts the server
    assert (
        cli("--project", root, "env", "stop", "--env", "staging", "--json").json()["outcome"] == "not-running"
    )

    started = cli("--project", root, "env", "start", "--env", "staging", "--json")
    assert started.exit_code == 0, started.stderr
    assert (started.json()["outcome"], started.json()["version"]) == ("started", "1")  # the ledger's version
    assert httpx.get(process.base_url + "/version", timeout=5).json()["primary"] == "1"
    assert process.watchdog() is not None
    assert cli("--project", root, "env", "start", "--env", "staging", "--json").json()["outcome"] == "running"

    restarted = cli("--project", root, "env", "restart", "--env", "staging", "--json").json()
    assert (restarted["stopped"], restarted["outcome"]) == ("stopped", "started")
    assert restarted["pid"] not in (first_pid, started.json()["pid"])

    logs = cli("--project", root, "env", "logs", "--env", "staging", "--lines", "3", "--json").json()
    assert 0 < len(logs["lines"]) <= 3
    assert logs["log"].endswith("server.log")
    actions = [(e.action, e.outcome) for e in Ledger.of(Project.load(root)).entries("staging")]
    assert actions.count(("stop", "ok")) == 2
    assert actions.count(("start", "ok")) == 2


def test_a_deploy_to_a_taken_port_is_one_line_before_any_model_loads(cli, deploy_project):
    process = EnvironmentProcess(Project.load(deploy_project), "staging")
    port = process.settings.port
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        result = cli("--project", deploy_project, "deploy", "--env", "staging", "--version", "1")
    assert result.exit_code == 2, result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("conveyor:")]
    assert f"port {port} of environment 'staging' on 127.0.0.1 is taken by a process Conveyor" in line
    assert not process.log_file.exists()  # no server was started, so no model was loaded
