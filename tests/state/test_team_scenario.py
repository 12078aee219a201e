"""Two runners, one truth: state in PostgreSQL, the registry on a real MLflow server, production
on long-running replicas given by URL, request logs in S3.

Runner A and runner B are two folders holding the project's files and no ``.conveyor``
(two fresh clones of the repository), each running ``conveyor`` commands in its own
processes with its own ``GITHUB_ACTOR``. They share what a team shares:
``CONVEYOR_STATE_URI`` (a real PostgreSQL with a password), ``registry.tracking_uri``
(a real ``mlflow server`` on PostgreSQL and S3), the S3 of the request logs, and the
production admin token in the variable named by ``admin_token_env`` (a CI secret). Production
is two ``conveyor serve`` replicas, each in a checkout of its own, started before anything is
deployed, as an operator (systemd, by hand) would start them — not by A's deploy.

- A runs the pipeline to production (the replicas load the version from the registry);
  B sees the same production version, ledger and A/B test with ``conveyor status --json``;
- A starts a canary; B sees it in progress (weight, pid, host) and B's own deploy of the
  same environment fails naming A's rollout — never both;
- B's ``conveyor rollback`` stops A's canary on every replica through the shared abort
  request: A's deploy exits as aborted, and A's ``status`` shows B's rollback;
- traffic and feedback sent to the replicas land in S3; B's monitor reads them (its result
  names the counts) and computes input drift against the reference profile A's training
  published to the shared store (B never trained).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import yaml

from conveyor.pipeline import conveyor_program
from conveyor.project import Project
from services import S3
from support import free_environment_ports, free_port, stop_process, wait_ready

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("services"), pytest.mark.slow]

TOKEN_VAR = "PRODUCTION_ADMIN_TOKEN"
BUCKET = "request-logs"
REPLICAS = 2
MIN_REQUESTS = 20  # monitoring.min_requests: the drift checks need this many rows


class Runner:
    """One runner: a folder with the project's files, its own actor, the team's shared settings."""

    def __init__(self, root: Path, actor: str, shared: dict[str, str]) -> None:
        self.root = root
        self.env = {
            **os.environ,
            **shared,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "DVC_NO_ANALYTICS": "1",
            "GITHUB_ACTOR": actor,
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


class Replica:
    """A long-running ``conveyor serve`` in its own checkout, started as an operator would."""

    def __init__(self, root: Path, port: int, env: dict[str, str]) -> None:
        self.root = root
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "serve.log"
        command = [*conveyor_program(), "serve", "--env", "production", "--host", "127.0.0.1",
                   "--port", str(self.port)]  # fmt: skip
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
            )

    def state(self) -> dict[str, Any]:
        return httpx.get(self.url + "/version", timeout=10).json()


def _clone(origin: Path, to: Path) -> Path:
    """A fresh clone: the project's files, no .conveyor."""
    shutil.copytree(origin, to, ignore=shutil.ignore_patterns(".conveyor"))
    return to


def _configure(origin: Path, name: str, tracking_uri: str, urls: list[str]) -> None:
    config = yaml.safe_load((origin / "conveyor.yaml").read_text())
    config["project"]["name"] = name
    config["registry"] = {**(config.get("registry") or {}), "tracking_uri": tracking_uri}
    config["serving"] = {**(config.get("serving") or {}),
                         "request_log": {"uri": f"s3://{BUCKET}/{name}", "flush_seconds": 0.2}}  # fmt: skip
    config["deploy"]["environments"]["production"] = {"replicas": urls, "admin_token_env": TOKEN_VAR}
    config["deploy"]["canary"] = {**config["deploy"].get("canary", {}), "interval_seconds": 30}
    config["monitoring"] = {**(config.get("monitoring") or {}), "min_requests": MIN_REQUESTS}
    (origin / "conveyor.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def team(cli, tmp_path: Path, postgres, s3: S3, mlflow_server) -> Any:
    origin = tmp_path / "origin"
    name = f"team-{uuid.uuid4().hex[:8]}"  # its own experiment, model and log prefix on the shared stores
    result = cli("init", origin, "--template", "recommender", "--json")
    assert result.exit_code == 0, result.stderr
    free_environment_ports(origin)
    ports = [free_port() for _ in range(REPLICAS)]
    _configure(origin, name, mlflow_server.url, [f"http://127.0.0.1:{p}" for p in ports])
    shutil.rmtree(origin / ".conveyor", ignore_errors=True)
    s3.create_bucket(BUCKET)
    shared = {
        **s3.env,
        "CONVEYOR_STATE_URI": postgres.create_database(f"team_{uuid.uuid4().hex[:8]}"),
        TOKEN_VAR: f"team-token-{uuid.uuid4().hex}",  # the team's secret, in every runner's environment
    }
    a = Runner(_clone(origin, tmp_path / "runner-a"), "runner-a", shared)
    b = Runner(_clone(origin, tmp_path / "runner-b"), "runner-b", shared)
    # production's replicas: each in a checkout of its own, with the token and the S3 settings only
    replica_env = {**os.environ, **s3.env, TOKEN_VAR: shared[TOKEN_VAR], "MLFLOW_DISABLE_TELEMETRY": "true"}
    replicas: list[Replica] = []
    try:
        for i, port in enumerate(ports):
            replicas.append(Replica(_clone(origin, tmp_path / f"replica-{i}"), port, replica_env))
        for replica in replicas:
            wait_ready(replica.url, replica.process, path="/health")
        yield a, b, replicas, name
    finally:
        from conveyor.deploy import EnvironmentProcess

        for replica in replicas:
            stop_process(replica.process)
        for runner in (a, b):
            project = Project.load(runner.root)
            for env in project.settings.deploy.environments:
                if not project.settings.deploy.environments[env].remote:
                    EnvironmentProcess(project, env).stop(grace=5)


def _parts(s3: S3, prefix: str) -> dict[str, int]:
    """Request-log part key → rows, for every part under ``prefix`` in the bucket."""
    client = s3.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    rows = {}
    for page in pages:
        for item in page.get("Contents", []):
            if item["Key"].endswith(".parquet"):
                body = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                rows[item["Key"]] = pl.read_parquet(io.BytesIO(body)).height
    return rows


def _wait_for_rows(s3: S3, prefix: str, before: dict[str, int], kind: str, expected: int) -> None:
    """Until the parts of ``kind`` written since ``before`` hold ``expected`` rows (bounded)."""
    deadline = time.monotonic() + 60
    new = 0
    while time.monotonic() < deadline:
        parts = _parts(s3, prefix)
        new = sum(n for key, n in parts.items() if key not in before and f"/{kind}-" in key)
        if new >= expected:
            break
        time.sleep(0.5)
    assert new == expected, f"{new} {kind} rows reached S3, {expected} were sent"


def test_two_runners_share_production_on_replicas_the_ledger_the_ab_test_the_lock_and_the_logs(
    team, s3: S3
) -> None:
    a, b, replicas, name = team
    assert not (a.root / ".conveyor").exists()
    assert not (b.root / ".conveyor").exists()
    check = b.ok("config", "check")
    assert check["state"]["kind"] == "postgresql"

    # -- A: the pipeline to production, on the replicas the operator started ---------------
    report = a.ok("run", timeout=600)
    assert report["stages"][-1]["stage"] == "deploy-production"
    seen_by_a = a.production()
    v1 = seen_by_a["expected"]["primary"]
    assert seen_by_a["remote"] is True
    assert [r.state()["primary"] for r in replicas] == [v1] * REPLICAS
    assert all(r.process.poll() is None for r in replicas)  # the same processes: A started none

    # -- B sees the same production version and ledger --------------------------------------
    seen_by_b = b.production()
    assert seen_by_b["expected"] == seen_by_a["expected"]
    assert seen_by_b["last_deployments"] == seen_by_a["last_deployments"]
    assert seen_by_b["last_deployments"][-1]["who"] == "runner-a"
    assert [line["url"] for line in seen_by_b["replicas"]] == [r.url for r in replicas]

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
        assert all(v2 in [v["version"] for v in r.state()["versions"]] for r in replicas)  # on every replica

        code, _out, err = b.run("deploy", "--env", "production", "--version", v2, "--json")
        assert code == 1
        assert f"locked by another deployment: deploy of version {v2} (canary) by pid {canary.pid}" in err
        assert len(err.strip().splitlines()) == 1

        # -- B's rollback stops A's canary on every replica; A sees it ---------------------
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
    for replica in replicas:
        state = replica.state()
        assert state["primary"] == v1
        assert [v["share"] for v in state["versions"] if v["version"] == v1] == [1.0]

    # -- traffic to the replicas lands in S3; B's monitor reads it -------------------------
    b.ok("monitor", "--env", "production", "--since", "1d")  # a first run: the window starts after it
    prefix = f"{name}/production/"
    before = _parts(s3, prefix)
    project = Project.load(a.root)
    column = project.settings.data.columns.item
    items = pl.read_parquet(project.data_source).get_column(column).unique().sort().head(10).to_list()
    sent = {"predictions": 0, "feedback": 0}
    with httpx.Client(timeout=30) as http:
        for i, replica in enumerate(replicas):
            for user in range(12 + 3 * i):  # 12 and 15 requests: the counts tell the replicas apart
                answer = http.post(f"{replica.url}/recommend", json={"user_id": user, "k": 3})
                assert answer.status_code == 200, answer.text
                sent["predictions"] += 1
                event = {"user_id": user, "item_id": items[user % len(items)], "event": "purchase"}
                assert http.post(f"{replica.url}/feedback", json=event).status_code == 202
                sent["feedback"] += 1
    for kind, count in sent.items():
        _wait_for_rows(s3, prefix, before, kind, count)
    code, out, err = b.run("monitor", "--env", "production", "--json", timeout=300)
    assert code in (0, 1), err  # 1: a check failed on a small sample; the counts are what is asserted
    monitored = json.loads(out)
    assert monitored["counts"] == {"requests": sent["predictions"], "feedback": sent["feedback"]}
    assert not (b.root / ".conveyor" / "requests").exists()  # read from S3, nothing local
    # B never trained: the reference profile came from the shared store, so input drift ran
    assert not (b.root / ".conveyor" / "runs").exists()
    checks = {c["name"]: c for c in monitored["checks"]}
    assert checks["input_drift"]["status"] in ("pass", "fail"), checks["input_drift"]
    assert checks["input_drift"]["details"]["rows"] == sent["feedback"]
