"""Two runners, one truth: Conveyor's state in PostgreSQL, the registry on a real MLflow server.

Runner A and runner B are two folders holding the project's files and no
``.conveyor`` (two fresh clones of the repository), each running ``conveyor``
commands in its own processes with its own ``GITHUB_ACTOR``. They share what a
team shares: ``CONVEYOR_STATE_URI`` (a real PostgreSQL with a password) and
``registry.tracking_uri`` (a real ``mlflow server``). Production runs on A's
machine; the one piece of A's local folder B is given is the environment's
admin token — the team's secret, as a CI secret would hand it out.

- A runs the pipeline to production; B sees the same production version, ledger
  and A/B test with ``conveyor status --json``;
- A starts a canary; B sees it in progress (weight, pid, host) and B's own
  deploy of the same environment fails naming A's rollout — never both;
- B's ``conveyor rollback`` stops A's canary through the shared abort request:
  A's deploy exits as aborted, and A's ``status`` shows B's rollback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.pipeline import conveyor_program
from conveyor.project import Project
from support import free_environment_ports

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("services"), pytest.mark.slow]


class Runner:
    """One runner: a folder with the project's files, its own actor, the team's shared settings."""

    def __init__(self, root: Path, actor: str, state_uri: str) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "DVC_NO_ANALYTICS": "1",
            "GITHUB_ACTOR": actor,
            "CONVEYOR_STATE_URI": state_uri,
        }

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*conveyor_program(), *args],
            cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip

    def run(self, *args: str, timeout: float = 300) -> tuple[int, str, str]:
        proc = self.start(*args)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"conveyor {' '.join(args)} did not finish in {timeout} s")
        return proc.returncode, out, err

    def ok(self, *args: str, timeout: float = 300) -> dict[str, Any]:
        code, out, err = self.run(*args, "--json", timeout=timeout)
        assert code == 0, f"conveyor {' '.join(args)} exited {code}: {err[-2000:]}"
        return json.loads(out)

    def production(self) -> dict[str, Any]:
        return self.ok("status")["environments"]["production"]


def _clone(origin: Path, to: Path) -> Path:
    """A fresh clone: the project's files, no .conveyor."""
    shutil.copytree(origin, to, ignore=shutil.ignore_patterns(".conveyor"))
    return to


@pytest.fixture
def runners(cli, tmp_path: Path, postgres, mlflow_server) -> Any:
    origin = tmp_path / "origin"
    name = f"team-{uuid.uuid4().hex[:8]}"  # its own experiment and model on the shared server
    result = cli("init", origin, "--template", "recommender", "--json")
    assert result.exit_code == 0, result.stderr
    free_environment_ports(origin)
    config = yaml.safe_load((origin / "conveyor.yaml").read_text())
    config["project"]["name"] = name
    config["registry"] = {**(config.get("registry") or {}), "tracking_uri": mlflow_server.url}
    config["deploy"]["canary"] = {**config["deploy"].get("canary", {}), "interval_seconds": 30}
    (origin / "conveyor.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.rmtree(origin / ".conveyor", ignore_errors=True)
    state_uri = postgres.create_database(f"team_{uuid.uuid4().hex[:8]}")
    a = Runner(_clone(origin, tmp_path / "runner-a"), "runner-a", state_uri)
    b = Runner(_clone(origin, tmp_path / "runner-b"), "runner-b", state_uri)
    yield a, b
    from conveyor.deploy import EnvironmentProcess

    for runner in (a, b):
        project = Project.load(runner.root)
        for env in project.settings.deploy.environments:
            EnvironmentProcess(project, env).stop(grace=5)


def test_two_runners_share_production_the_ledger_the_ab_test_and_the_deploy_lock(runners) -> None:
    a, b = runners
    assert not (a.root / ".conveyor").exists()
    assert not (b.root / ".conveyor").exists()
    check = b.ok("config", "check")
    assert check["state"]["kind"] == "postgresql"

    # -- A: the pipeline to production -----------------------------------------------------
    report = a.ok("run", timeout=600)
    assert report["stages"][-1]["stage"] == "deploy-production"
    seen_by_a = a.production()
    v1 = seen_by_a["expected"]["primary"]

    # -- B sees the same production version and ledger --------------------------------------
    seen_by_b = b.production()
    assert seen_by_b["expected"] == seen_by_a["expected"]
    assert seen_by_b["last_deployments"] == seen_by_a["last_deployments"]
    assert seen_by_b["last_deployments"][-1]["who"] == "runner-a"

    # -- a second version; an A/B test started by A is the one B sees ----------------------
    a.ok("train", "--force")
    a.ok("evaluate")
    v2 = str(a.ok("register")["version"])
    assert v2 != v1
    started = a.ok("ab", "start", "--version", v2, "--variant-ratio", "0.2")
    ab_seen_by_b = b.production()["ab_test"]
    assert ab_seen_by_b["id"] == started["id"]
    assert (ab_seen_by_b["control"], ab_seen_by_b["variant"]) == (v1, v2)
    concluded = a.ok("ab", "conclude")  # no traffic: nothing significant, the control stays
    assert concluded["outcome"] == "kept-control"
    assert b.production()["ab_test"] is None

    # -- A rolls out a canary; B sees it and cannot deploy at the same time ----------------
    # B is handed the environment's admin token (the team's secret) to reach production's server
    token = a.root / ".conveyor" / "envs" / "production" / "admin-token"
    (b.root / ".conveyor" / "envs" / "production").mkdir(parents=True, exist_ok=True)
    shutil.copy2(token, b.root / ".conveyor" / "envs" / "production" / "admin-token")
    canary = a.start("deploy", "--env", "production", "--version", v2, "--strategy", "canary", "--json")
    try:
        deadline = time.monotonic() + 180
        progress = b.production().get("in_progress")
        while (progress is None or progress.get("weight") is None) and time.monotonic() < deadline:
            assert canary.poll() is None, canary.communicate()
            time.sleep(0.5)
            progress = b.production().get("in_progress")
        assert progress is not None, "B never saw A's canary in progress"
        assert (progress["version"], progress["weight"], progress["pid"]) == (v2, 10.0, canary.pid)

        code, _out, err = b.run("deploy", "--env", "production", "--version", v2, "--json")
        assert code == 1
        assert f"locked by another deployment: deploy of version {v2} (canary) by pid {canary.pid}" in err
        assert len(err.strip().splitlines()) == 1

        # -- B's rollback stops A's canary; A sees it --------------------------------------
        rollback = b.ok("rollback", "--env", "production", timeout=120)
        assert rollback["stopped"] is True
        assert str(canary.pid) in rollback["aborted"]
        _out, err = canary.communicate(timeout=60)
        assert canary.returncode == 1, err
        assert "stopped" in err or "abort" in err, err
    finally:
        if canary.poll() is None:
            os.killpg(canary.pid, signal.SIGKILL)
            canary.communicate()

    after = a.production()
    assert after["expected"]["primary"] == v1
    assert after["in_progress"] is None
    last = after["last_deployments"][-1]
    assert (last["action"], last["outcome"], last["who"]) == ("rollback", "ok", "runner-b")
    assert last["version"] == v1
    assert b.production()["last_deployments"] == after["last_deployments"]
