"""A team's stores: every command against a real `mlflow server` on PostgreSQL with artifacts in S3,
the request log and the reports in S3.

Runner A (a project folder with no `.conveyor/mlflow.db`) runs the pipeline to production; the
model files go through the server's artifact proxy to S3, never into A's folder. Runner B (a fresh
copy of the project files) sees the same versions and aliases. A corrupted S3 object is refused
with one line by a runner that fetches it. Two servers started from one runner write their
request logs to S3, and the monitor run from another counts every request. The S3 keys and the
PostgreSQL password never appear in any output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from conveyor.pipeline import conveyor_program
from conveyor.project import Project
from conveyor.registry import get_version_by_alias, list_versions
from services import S3, MlflowServer, Postgres
from support import free_environment_ports, free_port, stop_process, wait_ready

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.xdist_group("services")]

_SKIP_COPY = {".conveyor", ".git", ".dvc-remote"}
_SECRETS: list[str] = []  # the S3 secret key and the PostgreSQL password, once the services run


def _env(s3: S3) -> dict[str, str]:
    return {**os.environ, **s3.env, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
            "DVC_NO_ANALYTICS": "1"}  # fmt: skip


def _conveyor(
    root: Path, env: dict[str, str], *args: str, timeout: float = 420
) -> subprocess.CompletedProcess[str]:
    """`conveyor ARGS` in its own process group, killed whole on timeout (no orphans)."""
    proc = subprocess.Popen(
        [*conveyor_program(), "--project", str(root), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"conveyor {' '.join(args)} did not finish in {timeout} s")
    for secret in _SECRETS:  # every command's output, whatever order the tests run in
        assert secret not in out + err, f"conveyor {' '.join(args)} printed a secret"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _copy(root: Path, to: Path) -> Path:
    """A fresh runner's checkout: the project's files, none of A's local state."""
    shutil.copytree(root, to, ignore=lambda _d, names: [n for n in names if n in _SKIP_COPY])
    return to


@pytest.fixture(scope="module")
def runner_a(tmp_path_factory, mlflow_server: MlflowServer, s3: S3, postgres: Postgres):
    """A recommender project naming the server, run to production by `conveyor run`."""
    _SECRETS[:] = [s3.secret_key, postgres.password]
    tmp = tmp_path_factory.mktemp("team")
    root = tmp / "runner-a"
    env = _env(s3)
    init = subprocess.run(
        [*conveyor_program(), "init", str(root), "--template", "recommender", "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    free_environment_ports(root)
    raw = yaml.safe_load((root / "conveyor.yaml").read_text())
    name = f"team-{uuid.uuid4().hex[:8]}"  # the server outlives this module: a model of its own
    raw["registry"] = {"tracking_uri": mlflow_server.url, "model_name": name, "experiment": name}
    bucket = s3.create_bucket("request-logs")
    raw.setdefault("serving", {})["request_log"] = {"uri": f"{bucket}/{name}", "flush_seconds": 0.2}
    (root / "conveyor.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    outputs = [init.stdout, init.stderr]
    try:
        run = _conveyor(root, env, "run", "--json")
        outputs += [run.stdout, run.stderr]
        assert run.returncode == 0, run.stdout + run.stderr
        report = json.loads(run.stdout)
        assert report["stages"][-1]["stage"] == "deploy-production"
        status = _conveyor(root, env, "status", "--json")
        outputs += [status.stdout, status.stderr]
        assert status.returncode == 0, status.stderr
        yield root, env, outputs, json.loads(status.stdout)
    finally:
        from conveyor.deploy import EnvironmentProcess

        project = Project.load(root)
        for environment in project.settings.deploy.environments:
            EnvironmentProcess(project, environment).stop()


def _keys(s3: S3, bucket: str = "mlflow") -> list[str]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_the_pipeline_reaches_production_with_no_local_store_and_artifacts_in_s3(runner_a, s3: S3) -> None:
    root, _, _, _status = runner_a
    state = root / ".conveyor"
    assert not (state / "mlflow.db").exists()
    assert not (state / "mlartifacts").exists()
    project = Project.load(root)
    production = get_version_by_alias(project, "production")
    assert production is not None
    assert production.version == "1"
    # the registered model's files are objects in S3, behind the server's artifact proxy
    keys = _keys(s3)
    assert any(k.endswith("/MLmodel") for k in keys), keys[:20]
    assert any("/artifacts/model/" in k and k.endswith("user_factors.npy") for k in keys), keys[:50]


def test_a_second_runner_sees_the_same_versions_and_aliases(runner_a, tmp_path: Path) -> None:
    root, env, outputs, _ = runner_a
    b = _copy(root, tmp_path / "runner-b")
    mine, theirs = Project.load(root), Project.load(b)
    assert [(v.version, v.aliases, v.sha256) for v in list_versions(theirs)] == [
        (v.version, v.aliases, v.sha256) for v in list_versions(mine)
    ]
    assert "production" in list_versions(theirs)[0].aliases
    status = _conveyor(b, env, "status", "--json")
    outputs += [status.stdout, status.stderr]
    assert status.returncode == 0, status.stderr
    assert not (b / ".conveyor" / "mlflow.db").exists()


def test_a_corrupted_s3_object_is_refused_in_one_line(runner_a, s3: S3, tmp_path: Path) -> None:
    root, env, outputs, _ = runner_a
    project = Project.load(root)
    production = get_version_by_alias(project, "production")
    assert production is not None
    # the registered (logged) model's copy of the Conveyor files, not the training run's
    model_files = [k for k in _keys(s3) if "/models/" in k and "/artifacts/model/" in k]
    assert model_files
    client = s3.client()
    # every registered version's copy: earlier tests may have moved production to another version
    targets = [k for k in model_files if k.endswith("user_factors.npy")]
    originals = {k: client.get_object(Bucket="mlflow", Key=k)["Body"].read() for k in targets}
    for key, body in originals.items():
        client.put_object(Bucket="mlflow", Key=key, Body=body + b" ")
    try:
        c = _copy(root, tmp_path / "runner-c")  # nothing cached: it fetches from S3
        served = _conveyor(c, env, "serve", "--env", "production", "--port", str(free_port()), timeout=300)
        outputs += [served.stdout, served.stderr]
        assert served.returncode == 1, served.stderr
        lines = [line for line in served.stderr.splitlines() if line.startswith("conveyor:")]
        assert len(lines) == 1, served.stderr
        assert "checksum mismatch" in lines[0], served.stderr
        assert "Traceback" not in served.stderr
    finally:
        for key, body in originals.items():
            client.put_object(Bucket="mlflow", Key=key, Body=body)


def _serve(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [*conveyor_program(), "--project", str(root), "serve", "--env", "production", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


def _monitored_requests(root: Path, env: dict[str, str], outputs: list[str]) -> dict:
    done = _conveyor(root, env, "monitor", "--env", "production", "--since", "1d", "--json", timeout=300)
    outputs += [done.stdout, done.stderr]
    assert done.returncode in (0, 1), done.stderr  # 1: a check failed on a small sample; still counted
    return json.loads(done.stdout)


def test_two_servers_write_to_s3_and_the_monitor_of_another_runner_counts_every_request(
    runner_a, s3: S3, tmp_path: Path
) -> None:
    root, env, outputs, _ = runner_a
    b = _copy(root, tmp_path / "runner-b")
    c = _copy(root, tmp_path / "runner-c")
    before = _monitored_requests(c, env, outputs)["counts"]["requests"]
    servers = [_serve(b, env), _serve(b, env)]
    sent = {0: 7, 1: 5}
    try:
        for i, (process, url) in enumerate(servers):
            wait_ready(url, process)
            for user in range(sent[i]):
                answer = httpx.post(f"{url}/recommend", json={"user_id": user, "k": 3}, timeout=30)
                assert answer.status_code == 200, answer.text
    finally:
        for process, _ in servers:
            stop_process(process)  # SIGTERM: each server writes what it buffered, then exits
    keys = _keys(s3, "request-logs")
    parts = [k for k in keys if "/production/date=" in k and "/predictions-" in k]
    assert len({k.rsplit("/", 1)[1].rsplit("-", 1)[0] for k in parts}) >= 2  # one replica id per server
    assert all("/hour=" in k for k in parts)
    report = _monitored_requests(c, env, outputs)
    assert report["counts"]["requests"] - before == sum(sent.values())
    assert not (c / ".conveyor" / "requests").exists()  # nothing read or written locally
    # the monitor's reports went beside the request log
    uploaded = report["files"]["uploaded"]
    assert sorted(u.rsplit("/", 1)[1] for u in uploaded) == ["report.html", "report.json", "report.md"]
    assert {f"s3://request-logs/{k}" for k in _keys(s3, "request-logs")} >= set(uploaded)


def test_the_pipeline_report_is_uploaded_beside_the_request_log(runner_a, s3: S3) -> None:
    root, env, outputs, _ = runner_a
    done = _conveyor(root, env, "report", "--json", timeout=300)
    outputs += [done.stdout, done.stderr]
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    [uploaded] = payload["uploaded"]
    name = Project.load(root).model_name
    assert uploaded.startswith(f"s3://request-logs/{name}/pipeline/reports/")
    assert uploaded.endswith("/report.md")
    body = s3.client().get_object(Bucket="request-logs", Key=uploaded.removeprefix("s3://request-logs/"))
    assert body["Body"].read().decode().startswith("#")


def test_no_secret_appears_in_any_output_or_log(runner_a, s3: S3, postgres: Postgres) -> None:
    root, _, outputs, _ = runner_a  # each command's output is also checked as it returns (_conveyor)
    logs = [p.read_text(errors="replace") for p in (root / ".conveyor").rglob("*.log")]
    assert logs  # the stages' and the servers' logs
    for text in [*outputs, *logs]:
        assert s3.secret_key not in text
        assert postgres.password not in text
