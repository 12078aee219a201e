"""Fixtures of the deployment tests: a project with registered versions, servers cleaned up."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conveyor.telemetry import TELEMETRY_OPT_OUT
from support import free_port

USERS, ITEMS = 300, 60
K = 5


def _interactions() -> pl.DataFrame:
    """Users with one of three tastes (item ranges), 15 interactions each."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(USERS):
        taste = user % 3
        for item in rng.integers(taste * 20, taste * 20 + 20, 15):
            rows.append((user, int(item), 1_700_000_000 + len(rows), "view"))
    return pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp", "event"], orient="row")


@pytest.fixture(scope="session")
def registered_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1, 2 (healthy ALS), 3 (fails half its calls), 4 (passes its smoke test, then fails half)."""
    import mlflow

    from conveyor.deploy import FaultyRecommender
    from conveyor.models import ImplicitRecommender
    from conveyor.project import Project
    from conveyor.registry import Lineage, ensure_experiment, register_version

    root = tmp_path_factory.mktemp("deploy-template")
    (root / "conveyor.yaml").write_text("project: {name: shop}\nmodel: {k: 5}\n")
    data = _interactions()
    (root / "data" / "raw").mkdir(parents=True)
    data.write_parquet(root / "data" / "raw" / "interactions.parquet")
    project = Project.load(root)
    experiment = ensure_experiment(project)
    models = [
        ImplicitRecommender(params={"factors": 8, "iterations": 5}, seed=1).fit(data),
        ImplicitRecommender(params={"factors": 8, "iterations": 5}, seed=2).fit(data),
    ]
    models.append(FaultyRecommender(models[0], error_rate=0.5))
    models.append(FaultyRecommender(models[0], error_rate=0.5, healthy_calls=50))
    for i, model in enumerate(models):
        model_dir = root / "models" / str(i)
        model.save(model_dir)
        with mlflow.start_run(experiment_id=experiment) as run:
            pass
        register_version(project, run.info.run_id, model_dir, lineage=Lineage(model_type="als"))
    return root


@pytest.fixture
def deploy_project(
    registered_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A copy of the template on free ports; every server it starts is stopped afterwards."""
    from conveyor.deploy import EnvironmentProcess
    from conveyor.project import Project

    for key, value in TELEMETRY_OPT_OUT.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GITHUB_ACTOR", "deploy-test")
    root = tmp_path / "shop"
    shutil.copytree(registered_template, root)
    (root / "conveyor.yaml").write_text(
        f"""
project: {{name: shop}}
model: {{k: {K}}}
serving:
  request_log: {{flush_seconds: 0.5}}
deploy:
  health_timeout_seconds: 90
  environments:
    staging: {{port: {free_port()}}}
    production: {{port: {free_port()}}}
  canary: {{min_requests: 40, interval_seconds: 3}}
  smoke: {{latency_budget_ms: 2000}}
"""
    )
    yield root
    project = Project.load(root)
    for env in project.settings.deploy.environments:
        EnvironmentProcess(project, env).stop(grace=5)
