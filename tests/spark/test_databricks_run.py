"""``conveyor spark databricks-run`` against a Databricks workspace on 127.0.0.1 (databricks_fake.py).

The command is the real one, through the real Databricks SDK over HTTP; only the workspace is a
stand-in, which checks the submitted body against the Jobs API's fields and plays a run's states.
No Spark and no JVM: these tests run with the fast ones.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from databricks_fake import FakeDatabricks

from conveyor.telemetry import TELEMETRY_OPT_OUT

TOKEN = "dapi-test-0123456789abcdef"
RUN = ("spark", "databricks-run")
CONVEYOR_YAML = """\
project: {name: shop}
model: {engine: spark}
spark:
  conf: {spark.sql.shuffle.partitions: 8}
  databricks:
    spark_version: 15.4.x-scala2.12
    node_type_id: i3.xlarge
    num_workers: 2
    project_dir: /Workspace/Repos/team/shop
    token_env: SHOP_DATABRICKS_TOKEN
    secrets:
      MLFLOW_TRACKING_TOKEN: shop/mlflow-token
      AWS_SECRET_ACCESS_KEY: shop-s3/secret-key
workflows:
  conveyor_requirement: conveyor-ml==1.0.0   # what the cluster installs (not this machine's folder)
"""


@pytest.fixture
def workspace() -> Iterator[FakeDatabricks]:
    fake = FakeDatabricks(token=TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    (root / "conveyor.yaml").write_text(CONVEYOR_YAML)
    return root


@pytest.fixture(autouse=True)
def _workspace_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workspace's URL and the token in the environment, for the tests that have a workspace."""
    if "workspace" in request.fixturenames:
        workspace: FakeDatabricks = request.getfixturevalue("workspace")
        monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
        monkeypatch.setenv("SHOP_DATABRICKS_TOKEN", TOKEN)


def _lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip()]


def test_a_successful_run_is_submitted_as_databricks_job_prints_it(
    cli: Callable[..., Any], project: Path, workspace: FakeDatabricks
) -> None:
    done = cli("--project", project, "spark", "databricks-run", "--poll", "0.1", "--json")
    assert done.exit_code == 0, done.stderr
    result = done.json()
    assert result["ok"] is True
    assert result["run_id"] == 1
    assert result["result_state"] == "SUCCESS"
    assert result["run_page_url"] == f"{workspace.url}/#job/0/run/1"
    # one line per state the run went through, on stderr
    assert [line for line in _lines(done.stderr) if line.startswith("run 1:")] == [
        f"run 1: {workspace.url}/#job/0/run/1",  # where to watch it
        "run 1: PENDING: Waiting for cluster",
        "run 1: RUNNING",
        "run 1: TERMINATED SUCCESS",
    ]

    (body,) = workspace.submitted
    job = cli("--project", project, "spark", "databricks-job", "--json").json()["job"]
    assert body["run_name"] == job["name"] == "shop: conveyor train"
    assert body["tasks"] == job["tasks"]  # one owner of the body
    assert set(body) == {"run_name", "tasks", "idempotency_token"}
    cluster = body["tasks"][0]["new_cluster"]
    assert cluster["spark_env_vars"] == {  # references Databricks resolves on the cluster
        "AWS_SECRET_ACCESS_KEY": "{{secrets/shop-s3/secret-key}}",
        "MLFLOW_TRACKING_TOKEN": "{{secrets/shop/mlflow-token}}",
    }
    assert body["tasks"][0]["python_wheel_task"]["parameters"] == [
        "--project",
        "/Workspace/Repos/team/shop",
        "train",
    ]
    assert workspace.cancelled == []

    human = cli("--project", project, "spark", "databricks-run", "--poll", "0.1", "--", "evaluate")
    assert human.exit_code == 0, human.stderr
    assert human.stdout.strip() == f"Databricks run 2 SUCCESS: {workspace.url}/#job/0/run/2"
    assert workspace.submitted[1]["tasks"][0]["python_wheel_task"]["parameters"][2:] == ["evaluate"]


def test_a_failed_run_exits_1_with_its_state_message(
    cli: Callable[..., Any], project: Path, workspace: FakeDatabricks
) -> None:
    workspace.script = [
        ("RUNNING", None, ""),
        ("TERMINATED", "FAILED", "Task train failed with message: gate ndcg_at_10 failed."),
    ]
    done = cli("--project", project, "spark", "databricks-run", "--poll", "0.1")
    assert done.exit_code == 1
    error = _lines(done.stderr)[-1]
    assert error == (
        "conveyor: OperationError: Databricks run 1 FAILED: Task train failed with message: gate ndcg_at_10 "
        f"failed. ({workspace.url}/#job/0/run/1)"
    )
    assert done.stdout == ""


def test_a_run_past_its_timeout_is_cancelled_and_exits_1(
    cli: Callable[..., Any], project: Path, workspace: FakeDatabricks
) -> None:
    workspace.script = [("PENDING", None, ""), ("RUNNING", None, "")]  # runs for ever
    done = cli("--project", project, "spark", "databricks-run", "--timeout", "1", "--poll", "0.1")
    assert done.exit_code == 1
    assert workspace.cancelled == [1]
    assert (
        _lines(done.stderr)[-1]
        == "conveyor: OperationError: Databricks run 1 did not finish within 1 s: cancelled"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"SHOP_DATABRICKS_TOKEN": "dapi-wrong-token-42"},
            "conveyor: UsageError: Databricks refused the token (401: Invalid access token): set a valid "
            "personal access token in the variable spark.databricks.token_env names",
        ),
        (
            {"SHOP_DATABRICKS_TOKEN": "dapi-powerless-0042"},
            "conveyor: UsageError: Databricks refused the run to this token (PERMISSION_DENIED: User is "
            "not allowed to create clusters): its user needs the permission to create clusters and run jobs",
        ),
        (
            {"SHOP_DATABRICKS_TOKEN": None},
            "conveyor: UsageError: environment variable SHOP_DATABRICKS_TOKEN (the Databricks token) "
            "is not set",
        ),
        (
            {"DATABRICKS_HOST": None},
            "conveyor: UsageError: environment variable DATABRICKS_HOST (the Databricks workspace URL, e.g. "
            "https://dbc-1234.cloud.databricks.com) is not set",
        ),
        (
            {"DATABRICKS_HOST": "ftp://dbc-1234"},
            "conveyor: UsageError: DATABRICKS_HOST 'ftp://dbc-1234' is not a workspace URL "
            "(e.g. https://dbc-1234.cloud.databricks.com)",
        ),
        ({"DATABRICKS_HOST": "closed"}, "cannot reach Databricks at http://127.0.0.1:"),
    ],
    ids=["token-refused", "token-forbidden", "no-token", "no-host", "bad-host", "unreachable"],
)
def test_a_setup_that_cannot_run_is_one_line_exit_2_without_the_token(
    cli: Callable[..., Any],
    project: Path,
    workspace: FakeDatabricks,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str | None],
    expected: str,
) -> None:
    for name, value in change.items():
        if value is None:
            monkeypatch.delenv(name)
        elif value == "closed":
            with socket.socket() as free:  # a port nothing listens on
                free.bind(("127.0.0.1", 0))
                port = free.getsockname()[1]
            monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
        else:
            monkeypatch.setenv(name, value)
    done = cli("--project", project, "spark", "databricks-run", "--poll", "0.1")
    assert done.exit_code == 2
    assert len(_lines(done.stderr)) == 1, done.stderr
    assert expected in done.stderr
    for token in (TOKEN, "dapi-wrong-token-42", "dapi-powerless-0042"):
        assert token not in done.stdout + done.stderr
    assert workspace.submitted == []


def test_a_body_databricks_refuses_is_exit_2_with_its_error_code(
    cli: Callable[..., Any], project: Path, workspace: FakeDatabricks
) -> None:
    yaml_text = (project / "conveyor.yaml").read_text().replace("i3.xlarge", "x9.gigantic")
    (project / "conveyor.yaml").write_text(yaml_text)
    done = cli("--project", project, "spark", "databricks-run", "--json")
    assert done.exit_code == 2
    assert _lines(done.stderr) == [
        "conveyor: UsageError: Databricks refused the run "
        "(INVALID_PARAMETER_VALUE: Node type x9.gigantic is not supported)"
    ]
    assert done.json()["ok"] is False
    assert TOKEN not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        (
            "{MLFLOW_TRACKING_TOKEN: s3cr3t-value}",
            "spark.databricks.secrets.MLFLOW_TRACKING_TOKEN: not a Databricks secret as scope/key",
        ),
        ("{MLFLOW_TRACKING_TOKEN: '{{secrets/shop/k}}'}", "not a Databricks secret as scope/key"),
        ("{'2BAD': shop/key}", "spark.databricks.secrets.2BAD: not an environment variable name"),
    ],
    ids=["a-value", "a-reference", "bad-name"],
)
def test_secrets_are_scope_key_references_never_values(
    cli: Callable[..., Any], project: Path, secrets: str, expected: str
) -> None:
    text = (project / "conveyor.yaml").read_text()
    head = text.split("    secrets:")[0]
    (project / "conveyor.yaml").write_text(f"{head}    secrets: {secrets}\n")
    done = cli("--project", project, "config", "check")
    assert done.exit_code == 2
    assert expected in done.stderr
    assert len(_lines(done.stderr)) == 1, done.stderr
    assert "s3cr3t-value" not in done.stderr


# `conveyor` with Ctrl-C raising KeyboardInterrupt, as in a terminal, even under a test runner that ignores it
CONVEYOR_AS_IN_A_TERMINAL = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from conveyor.cli import run; run()"
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_cancels_the_run(project: Path, workspace: FakeDatabricks, signum: int) -> None:
    """The command in its own process, interrupted once the run runs: Ctrl-C, or the SIGTERM a
    cancelled workflow's runner sends."""
    workspace.script = [("RUNNING", None, "")]
    env = {**os.environ, **TELEMETRY_OPT_OUT}
    proc = subprocess.Popen(
        [sys.executable, "-c", CONVEYOR_AS_IN_A_TERMINAL, "--project", str(project), *RUN, "--poll", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert workspace.running.wait(timeout=60), "the run never reached RUNNING"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert workspace.cancelled == [1]
    assert "interrupted: Databricks run 1 cancelled" in err
    assert TOKEN not in out + err


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("model: {engine: spark}", "model: {engine: local}"),
            "workflows.training: databricks runs the Spark training; set model.engine: spark "
            "(or workflows.training: runner)",
        ),
        (
            ("    project_dir: /Workspace/Repos/team/shop\n", ""),
            "workflows.training: databricks runs the training on a Databricks job cluster; set "
            "spark.databricks.project_dir (e.g. project_dir: /Workspace/Repos/team/shop)",
        ),
    ],
    ids=["local-engine", "no-project-dir"],
)
def test_workflows_training_databricks_needs_spark_and_the_cluster(
    cli: Callable[..., Any], project: Path, change: tuple[str, str], expected: str
) -> None:
    text = (project / "conveyor.yaml").read_text().replace(*change)
    (project / "conveyor.yaml").write_text(text + "  training: databricks\n")
    done = cli("--project", project, "config", "check")
    assert done.exit_code == 2
    assert _lines(done.stderr) == [f"conveyor: ConfigError: {project / 'conveyor.yaml'}: {expected}"]


def _run_train_step(script: str, cwd: Path, workspace: FakeDatabricks) -> subprocess.CompletedProcess[str]:
    """A generated train step's script as GitHub runs it: bash, the step's env with the workspace's
    variable and the token's secret set, MODEL_TYPE als; the run done at the first look."""
    env = {
        **os.environ,
        **TELEMETRY_OPT_OUT,
        "MODEL_TYPE": "als",
        "DATABRICKS_HOST": workspace.url,
        "SHOP_DATABRICKS_TOKEN": TOKEN,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    workspace.script = [("TERMINATED", "SUCCESS", "")]  # no wait between polls
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_generated_training_job_runs_each_stage_on_databricks(
    cli: Callable[..., Any], project: Path, workspace: FakeDatabricks
) -> None:
    """The reusable training job submits train, evaluate and register as Databricks runs; its train
    step's script, run with bash as the runner runs it, submits the model type it was given."""
    import yaml

    (project / "conveyor.yaml").write_text(CONVEYOR_YAML + "  training: databricks\n")
    generated = cli("--project", project, "workflows", "generate")
    assert generated.exit_code == 0, generated.stderr
    # the stores' secrets the cluster is not given are named (CONVEYOR_STATE_URI, the default state.uri_env)
    assert "the job cluster gets no CONVEYOR_STATE_URI; add it to spark.databricks.secrets" in (
        generated.stderr
    )
    checked = cli("--project", project, "workflows", "check", "--json")  # actionlint, schema, zizmor
    assert checked.exit_code == 0, checked.stdout + checked.stderr

    workflows = project / ".github" / "workflows"
    reusable = yaml.safe_load((workflows / "reusable-training.yml").read_text())
    secret = "${{ secrets.SHOP_DATABRICKS_TOKEN }}"
    assert "SHOP_DATABRICKS_TOKEN" in reusable["on"]["workflow_call"]["secrets"]
    job = reusable["jobs"]["train"]
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs == [  # no dvc pull, no training, no report on the runner
        "python -m pip install -r requirements.lock",
        'conveyor spark databricks-run -- train --model-type "$MODEL_TYPE"',
        "conveyor spark databricks-run -- evaluate",
        "conveyor spark databricks-run -- register",
    ]
    for step in job["steps"][3:]:
        assert step["env"]["DATABRICKS_HOST"] == "${{ vars.DATABRICKS_HOST }}"
        assert step["env"]["SHOP_DATABRICKS_TOKEN"] == secret
    assert job["steps"][-1]["if"] == "inputs.register"
    assert "env" not in job  # the runner needs none of the stores' secrets
    ci = yaml.safe_load((workflows / "ci-cd-pipeline.yml").read_text())
    weekly = yaml.safe_load((workflows / "weekly-retrain.yml").read_text())
    callers = [ci["jobs"]["model-training"], ci["jobs"]["model-matrix"], weekly["jobs"]["model-training"]]
    for caller in callers:  # the token is passed by name, never inherited
        assert caller["secrets"]["SHOP_DATABRICKS_TOKEN"] == secret

    # the train step's script as GitHub runs it: bash, the step's env with the variable and secret set
    done = _run_train_step(job["steps"][3]["run"], project, workspace)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run 1: TERMINATED SUCCESS" in done.stderr
    (body,) = workspace.submitted
    assert body["tasks"][0]["python_wheel_task"]["parameters"] == [
        "--project",
        "/Workspace/Repos/team/shop",
        "train",
        "--model-type",
        "als",
    ]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("dbc-1234.cloud.databricks.com", "https://dbc-1234.cloud.databricks.com"),  # as the CLI reads it
        ("https://dbc-1234.cloud.databricks.com/", "https://dbc-1234.cloud.databricks.com"),
        (" http://127.0.0.1:8080 ", "http://127.0.0.1:8080"),
        ("https://adb-1.azuredatabricks.net/?o=1", None),
        ("https://host:port", None),
        ("https://host/api/2.1", None),
        ("file:///etc/passwd", None),
    ],
)
def test_the_workspace_url_is_a_scheme_a_host_and_a_port(host: str, url: str | None) -> None:
    from conveyor.errors import UsageError
    from conveyor.spark._databricks_run import workspace_url

    if url is not None:
        assert workspace_url(host) == url
        return
    with pytest.raises(UsageError, match="is not a workspace URL"):
        workspace_url(host)


# -- spark.databricks.upload: the code of the commit under test, not whatever project_dir holds ---------
UPLOAD_YAML = CONVEYOR_YAML.replace(
    "    project_dir: /Workspace/Repos/team/shop\n",
    "    project_dir: /Workspace/Shared/shop\n    upload: true\n",
)
TRACKED = {  # what Git tracks in the test's project, byte for byte
    "conveyor.yaml": UPLOAD_YAML.encode(),
    "schema.yaml": b"columns: {user_id: int}\n",
    "src/features/build.py": b"def build(frame):\r\n    return frame  # CRLF kept as is\r\n",
    "src/features/weights.bin": bytes(range(256)) * 4,  # not text: uploaded as it is
    ".gitignore": b"data/\n",
}
API_BASE = "/Shared/shop"  # project_dir as the workspace API names it (the cluster reads /Workspace/...)


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def git_project(tmp_path: Path) -> Path:
    """A project in a real Git checkout: TRACKED committed, a data file Git ignores beside them."""
    root = tmp_path / "repo"
    for name, data in TRACKED.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "data").mkdir()
    (root / "data" / "events.csv").write_text("user_id,item_id\n1,2\n")  # DVC's, not Git's
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "the project")
    return root


def _digest(files: dict[str, bytes]) -> str:
    """The folder's digest computed here from the files the test wrote: sha256 over the sorted
    (path, bytes) pairs, each length-prefixed (8 bytes, big-endian), first 16 hex characters."""
    import hashlib

    sha = hashlib.sha256()
    for name in sorted(files):
        for part in (name.encode(), files[name]):
            sha.update(len(part).to_bytes(8, "big") + part)
    return sha.hexdigest()[:16]


def _uploaded(workspace: FakeDatabricks, digest: str) -> dict[str, bytes]:
    prefix = f"{API_BASE}/code-{digest}/"
    files = workspace.files.items()
    return {path.removeprefix(prefix): data for path, data in files if path.startswith(prefix)}


def test_upload_puts_the_tracked_files_in_a_folder_of_their_digest_and_runs_there(
    cli: Callable[..., Any], git_project: Path, workspace: FakeDatabricks
) -> None:
    import json

    done = cli("--project", git_project, *RUN, "--poll", "0.1", "--json")
    assert done.exit_code == 0, done.stderr
    digest = _digest(TRACKED)
    folder = f"/Workspace/Shared/shop/code-{digest}"
    assert done.json()["code"] == {"folder": folder, "digest": digest, "files": 5, "uploaded": True}
    arrived = _uploaded(workspace, digest)
    marker = json.loads(arrived.pop(".conveyor-upload.json"))
    assert arrived == TRACKED  # byte for byte; data/events.csv (not tracked) is not there
    assert marker["digest"] == digest
    assert marker["files"] == sorted(TRACKED)
    assert workspace.imports[-1]["path"] == f"{API_BASE}/code-{digest}/.conveyor-upload.json"  # last
    assert {fields["format"] for fields in workspace.imports} == {"RAW"}  # files stay files
    (body,) = workspace.submitted
    assert body["tasks"][0]["python_wheel_task"]["parameters"] == ["--project", folder, "train"]
    assert f"uploaded the 5 files Git tracks (code {digest}) to {folder}" in done.stderr
    assert TOKEN not in done.stdout + done.stderr

    # the next stage of the same job: same code, same folder, nothing uploaded
    imports = len(workspace.imports)
    again = cli("--project", git_project, *RUN, "--poll", "0.1", "--json", "--", "evaluate")
    assert again.exit_code == 0, again.stderr
    assert again.json()["code"] == {"folder": folder, "digest": digest, "files": 5, "uploaded": False}
    assert len(workspace.imports) == imports
    assert f"code {digest} (5 files) is already in {folder}: not uploaded again" in again.stderr
    assert workspace.submitted[1]["tasks"][0]["python_wheel_task"]["parameters"] == [
        "--project",
        folder,
        "evaluate",
    ]

    # an edit not committed yet counts: what the user sees is what runs
    edited = {**TRACKED, "schema.yaml": b"columns: {user_id: int, item_id: int}\n"}
    (git_project / "schema.yaml").write_bytes(edited["schema.yaml"])
    third = cli("--project", git_project, *RUN, "--poll", "0.1", "--json")
    assert third.exit_code == 0, third.stderr
    new_digest = _digest(edited)
    assert new_digest != digest
    assert third.json()["code"]["folder"] == f"/Workspace/Shared/shop/code-{new_digest}"
    assert third.json()["code"]["uploaded"] is True
    arrived = _uploaded(workspace, new_digest)
    arrived.pop(".conveyor-upload.json")
    assert arrived == edited


def test_an_upload_cut_half_way_has_no_marker_and_is_redone(
    cli: Callable[..., Any], git_project: Path, workspace: FakeDatabricks
) -> None:
    workspace.fail_import_after = 2
    cut = cli("--project", git_project, *RUN, "--poll", "0.1")
    assert cut.exit_code == 1  # the workspace failed (a 5xx), not the user's input
    digest = _digest(TRACKED)
    assert _lines(cut.stderr)[-1].startswith(
        "conveyor: ServiceError: Databricks did not take the upload to "
        f"/Workspace/Shared/shop/code-{digest}: INTERNAL_ERROR"
    )
    assert len(_lines(cut.stderr)) == 1, cut.stderr
    assert len(_uploaded(workspace, digest)) == 2  # two files, no marker
    assert workspace.submitted == []

    workspace.fail_import_after = None
    redone = cli("--project", git_project, *RUN, "--poll", "0.1", "--json")
    assert redone.exit_code == 0, redone.stderr
    assert redone.json()["code"]["uploaded"] is True
    assert set(_uploaded(workspace, digest)) == {*TRACKED, ".conveyor-upload.json"}
    assert len(workspace.submitted) == 1


def test_upload_refuses_a_project_outside_git_and_a_file_over_the_limit(
    cli: Callable[..., Any], project: Path, git_project: Path, workspace: FakeDatabricks
) -> None:
    from conveyor.spark._databricks_upload import MAX_FILE_BYTES

    (project / "conveyor.yaml").write_text(UPLOAD_YAML)  # the same project, in no Git checkout
    outside = cli("--project", project, *RUN, "--poll", "0.1")
    assert outside.exit_code == 2
    assert _lines(outside.stderr) == [
        f"conveyor: UsageError: spark.databricks.upload uploads the files Git tracks, and {project} is not "
        "in a Git checkout (git init and commit it, or set upload: false)"
    ]

    os.truncate(git_project / "src/features/weights.bin", MAX_FILE_BYTES + 1)  # grown since the commit
    big = cli("--project", git_project, *RUN, "--poll", "0.1")
    assert big.exit_code == 2
    assert _lines(big.stderr) == [
        "conveyor: UsageError: src/features/weights.bin is 10.5 MB, over the 10 MB a workspace file may "
        "have: keep it out of Git (dvc add it) or set spark.databricks.upload: false"
    ]
    assert workspace.submitted == []
    assert workspace.files == {}


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (
            "dapi-wrong-token-42",
            "conveyor: UsageError: Databricks refused the token (401: Invalid access token): set a valid "
            "personal access token in the variable spark.databricks.token_env names",
        ),
        (
            "dapi-powerless-0042",
            "conveyor: UsageError: Databricks refused the upload to /Workspace/Shared/shop/code-"
            f"{_digest(TRACKED)} (PERMISSION_DENIED: User is not allowed to create clusters): the token's "
            "user needs write access to spark.databricks.project_dir",
        ),
    ],
    ids=["token-refused", "token-forbidden"],
)
def test_an_upload_databricks_refuses_is_one_line_without_the_token(
    cli: Callable[..., Any],
    git_project: Path,
    workspace: FakeDatabricks,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
    expected: str,
) -> None:
    monkeypatch.setenv("SHOP_DATABRICKS_TOKEN", token)
    done = cli("--project", git_project, *RUN, "--poll", "0.1")
    assert done.exit_code == 2
    assert _lines(done.stderr) == [expected]
    assert token not in done.stdout + done.stderr
    assert workspace.files == {}
    assert workspace.submitted == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "project_dir: /dbfs/shop\n    upload: true",
            "spark.databricks.upload: uploads into a workspace folder; project_dir '/dbfs/shop' is not under "
            "/Workspace/ (e.g. /Workspace/Shared/shop)",
        ),
        ("project_dir: /Workspace/Shared/shop\n    upload: maybe", "spark.databricks.upload: "),
    ],
    ids=["not-a-workspace-folder", "not-a-bool"],
)
def test_upload_config_refuses_what_it_cannot_do(
    cli: Callable[..., Any], project: Path, value: str, expected: str
) -> None:
    text = CONVEYOR_YAML.replace("project_dir: /Workspace/Repos/team/shop", value)
    (project / "conveyor.yaml").write_text(text)
    done = cli("--project", project, "config", "check")
    assert done.exit_code == 2
    (line,) = _lines(done.stderr)
    assert line.startswith(f"conveyor: ConfigError: {project / 'conveyor.yaml'}: {expected}")


def test_generated_train_step_with_upload_runs_the_checked_out_code(
    cli: Callable[..., Any], git_project: Path, workspace: FakeDatabricks
) -> None:
    """The generated train step, run with bash in a checkout as the runner runs it, uploads the
    checkout's tracked files and trains them (the pull request's code, not project_dir's)."""
    import yaml

    (git_project / "conveyor.yaml").write_text(UPLOAD_YAML + "  training: databricks\n")
    generated = cli("--project", git_project, "workflows", "generate")
    assert generated.exit_code == 0, generated.stderr
    reusable = yaml.safe_load((git_project / ".github/workflows/reusable-training.yml").read_text())
    train = reusable["jobs"]["train"]["steps"][3]
    assert train["name"].endswith("(a Databricks run of the checked-out code)")
    done = _run_train_step(train["run"], git_project, workspace)
    assert done.returncode == 0, done.stdout + done.stderr
    tracked = {**TRACKED, "conveyor.yaml": (git_project / "conveyor.yaml").read_bytes()}  # edited: counts
    digest = _digest(tracked)
    (body,) = workspace.submitted
    assert body["tasks"][0]["python_wheel_task"]["parameters"] == [
        "--project",
        f"/Workspace/Shared/shop/code-{digest}",
        "train",
        "--model-type",
        "als",
    ]
    arrived = _uploaded(workspace, digest)
    arrived.pop(".conveyor-upload.json")
    assert arrived == tracked  # the generated .github files are not tracked: not uploaded


def test_databricks_job_says_a_saved_job_does_not_upload(cli: Callable[..., Any], git_project: Path) -> None:
    """A saved job (databricks-job) runs later, without this checkout: it reads project_dir as it is."""
    done = cli("--project", git_project, "spark", "databricks-job", "--json")
    assert done.exit_code == 0, done.stderr
    params = done.json()["job"]["tasks"][0]["python_wheel_task"]["parameters"]
    assert params == ["--project", "/Workspace/Shared/shop", "train"]
    assert (
        "warning: spark.databricks.upload is done by `conveyor spark databricks-run`; this job runs "
        "whatever project_dir holds"
    ) in " ".join(done.stderr.split())
