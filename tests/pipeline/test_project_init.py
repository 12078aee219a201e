"""`conveyor init` for both templates → `workflows check` passes → `conveyor run` completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conveyor.pipeline import conveyor_program
from conveyor.project import Project
from support import free_environment_ports

ENV = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1"}


def _interactions(path: Path, seed: int = 3) -> Path:
    """Users in 4 taste groups, each buying from its own block of items, over 21 days."""
    rng = np.random.default_rng(seed)
    users, items, groups = 80, 60, 4
    rows = []
    start = datetime.now() - timedelta(days=21)
    for user in range(users):
        group = user % groups
        block = [i for i in range(items) if i % groups == group]
        for _ in range(30):
            item = int(rng.choice(block)) if rng.random() < 0.9 else int(rng.integers(items))
            when = start + timedelta(seconds=float(rng.uniform(0, 21 * 86400)))
            rows.append((user, item, when, str(rng.choice(["view", "view", "add_to_cart", "purchase"]))))
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp", "event"], orient="row")
    frame.sort("timestamp").write_parquet(path)
    return path


def _tabular(path: Path, seed: int = 5) -> Path:
    rng = np.random.default_rng(seed)
    n = 600
    x = rng.normal(size=(n, 4))
    label = (x[:, 0] + 0.8 * x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    frame = pl.DataFrame({f"x{i}": x[:, i] for i in range(4)}).with_columns(pl.Series("churned", label))
    frame.write_csv(path)
    return path


def _init(cli, tmp_path: Path, template: str) -> Path:
    root = tmp_path / f"{template}-shop"
    if template == "recommender":
        args = ["--data", _interactions(tmp_path / "events.parquet")]
    else:
        args = ["--data", _tabular(tmp_path / "customers.csv"), "--target", "churned"]
    result = cli("init", root, "--template", template, *args, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return root


@pytest.mark.parametrize("template", ["recommender", "classifier"])
def test_init_writes_a_project_whose_workflows_pass_the_check(cli, tmp_path, template):
    root = _init(cli, tmp_path, template)
    for rel in (
        "conveyor.yaml", "schema.yaml", "README.md", "requirements.lock", "tests/test_data.py",
        "tests/test_model.py", "data/raw.dvc", "data/processed.dvc", ".dvc/config", ".git",
        ".github/workflows/ci-cd-pipeline.yml", ".github/workflows/reusable-training.yml",
    ):  # fmt: skip
        assert (root / rel).exists(), rel
    settings = Project.load(root).settings
    assert settings.project.template.value == template
    assert (root / settings.data.source).is_file()
    assert "url = ../.dvc-remote" in (root / ".dvc" / "config").read_text()
    assert any((root / ".dvc-remote").rglob("*"))  # pushed, so `dvc pull` works on a clone
    assert "conveyor-ml==" in (root / "requirements.lock").read_text()
    if template == "classifier":
        assert settings.data.target == "churned"
        assert (root / "src" / "features" / "__init__.py").is_file()
    check = cli("--project", root, "workflows", "check", "--json")
    assert check.exit_code == 0, check.stdout + check.stderr


def test_init_refuses_an_existing_project_unless_forced(cli, tmp_path):
    root = _init(cli, tmp_path, "classifier")
    again = cli(
        "init", root, "--template", "classifier", "--data", tmp_path / "customers.csv", "--target", "churned"
    )
    assert again.exit_code == 2
    assert "pass --force" in again.stderr
    forced = cli(
        "init", root, "--template", "classifier", "--data", tmp_path / "customers.csv",
        "--target", "churned", "--force", "--json",
    )  # fmt: skip
    assert forced.exit_code == 0, forced.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template", "classifier", "--target", "nope"], "no target column 'nope'"),
        (["--template", "recommender", "--target", "x"], "--target is for the classifier"),
        (["--template", "tree"], "Invalid value for '--template'"),
    ],
)
def test_init_rejects_bad_input_with_one_line(cli, tmp_path, args, message):
    data = _tabular(tmp_path / "c.csv")
    result = cli("init", tmp_path / "p", "--data", data, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_init_recommender_data_needs_the_standard_columns(cli, tmp_path):
    data = _tabular(tmp_path / "c.csv")
    result = cli("init", tmp_path / "p", "--template", "recommender", "--data", data)
    assert result.exit_code == 2
    assert "the recommender needs columns user_id, item_id, timestamp" in result.stderr


@pytest.mark.parametrize("template", ["recommender", "classifier"])
def test_init_from_the_template_sample(cli, tmp_path, template):
    result = cli("init", tmp_path / "p", "--template", template, "--json")
    if result.exit_code == 2 and "not built yet" in result.stderr:
        pytest.skip(f"sample generator not exported by conveyor.data yet: {result.stderr.strip()}")
    assert result.exit_code == 0, result.stderr
    assert result.json()["rows"] > 0


def _conveyor_run(root: Path, *args: str, timeout: float = 240) -> tuple[int, dict]:
    """`conveyor run --json` in its own process group, killed whole on timeout (no orphans)."""
    proc = subprocess.Popen(
        [*conveyor_program(), "run", *args, "--json"],
        cwd=root, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"conveyor run {' '.join(args)} did not finish in {timeout} s")
    assert out.strip(), err
    return proc.returncode, json.loads(out)


# The deployment stages are the same code for both templates: the recommender run
# goes to production, the classifier run stops after `register` to keep the suite short.
@pytest.mark.slow
@pytest.mark.xdist_group("conveyor-run-e2e")
@pytest.mark.parametrize(("template", "until"), [("recommender", None), ("classifier", "register")])
def test_conveyor_run_completes_on_a_fresh_project(cli, tmp_path, template, until):
    from conveyor.deploy import EnvironmentProcess

    root = _init(cli, tmp_path, template)
    free_environment_ports(root)  # serve on free ports: no collision with other servers
    project = Project.load(root)
    args = ("--until", until) if until else ()
    try:
        code, report = _conveyor_run(root, *args)
        failed = report.get("failed_stage")
        if failed:
            stage = next(s for s in report["stages"] if s["stage"] == failed)
            if "not built yet" in stage["reason"]:
                pytest.skip(f"`{stage['command']}` is not built yet: {stage['reason']}")
        assert code == 0, json.dumps(report, indent=1)
        assert {s["status"] for s in report["stages"]} == {"ok"}
        assert report["stages"][-1]["stage"] == (until or "deploy-production")
        code, again = _conveyor_run(root, *args)
        assert code == 0
        assert {s["status"] for s in again["stages"]} == {"skipped"}
    finally:
        for env in project.settings.deploy.environments:
            EnvironmentProcess(project, env).stop()
