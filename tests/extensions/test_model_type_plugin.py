"""A model type from a separate package trains, is evaluated, registered and served through the registry.

The toy type ``most-users`` (tests/extensions/toy_plugin) ranks items by their number of distinct
users: on the data below its answer is known exactly, so the served recommendations prove that the
plugin's own model went all the way from ``conveyor.yaml`` to ``/recommend``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
from plugin_site import conveyor, install_toy_plugin

from support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("extensions")]

USERS = 60


def _interactions() -> pl.DataFrame:
    """Days 0-19 (the training part): every user touched item 0, every 2nd item 1, every 3rd item 2,
    every 4th item 3, and three of the items 10-29 (9 users each). Days 25-27 (held out by the
    global-time split): one item of 40-44 per user."""
    start = datetime(2026, 10, 1)
    rows = []
    for u in range(USERS):
        items = [0, *(i for i, every in ((1, 2), (2, 3), (3, 4)) if u % every == 0)]
        items += [10 + (u + j) % 20 for j in range(3)]
        rows += [(u, i, start + timedelta(days=(u + n) % 20)) for n, i in enumerate(items)]
        rows.append((u, 40 + u % 5, start + timedelta(days=25 + u % 3)))
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row")
    return frame.with_columns(pl.lit("view").alias("event"))


def _project(root: Path) -> Path:
    project = root / "toy"
    (project / "data" / "raw").mkdir(parents=True)
    _interactions().write_parquet(project / "data" / "raw" / "interactions.parquet")
    (project / "conveyor.yaml").write_text(
        f"""
project: {{name: toy-model-type}}
model: {{type: most-users, k: 3, primary_metric: ndcg_at_3}}
evaluation: {{split: global-time, min_evaluated: 10}}
gates: {{beat_baseline: false, no_regression: null, latency_p95_ms: null}}
deploy:
  environments:
    staging: {{port: {free_port()}}}
    production: {{port: {free_port()}}}
"""
    )
    return project


def test_a_plugin_model_type_trains_registers_and_serves(tmp_path):
    site = install_toy_plugin(tmp_path)
    project = _project(tmp_path)

    schema = conveyor(site, project, "config", "schema")
    assert schema.returncode == 0, schema.stderr
    assert "most-users" in json.loads(schema.stdout)["$defs"]["ModelType"]["enum"]
    assert "most-users" in conveyor(site, project, "train", "--help").stdout

    trained = conveyor(site, project, "train", "--json")
    assert trained.returncode == 0, trained.stderr
    run = json.loads(trained.stdout)["best"]
    assert run["model_type"] == "most-users"
    assert run["params"] == {"min_users": 1}
    for stage in ("evaluate", "register"):
        done = conveyor(site, project, stage, "--json")
        assert done.returncode == 0, done.stderr
    deployed = conveyor(site, project, "deploy", "--env", "staging", "--json")
    try:
        assert deployed.returncode == 0, deployed.stderr
        port = json.loads(conveyor(site, project, "config", "show", "--json").stdout)
        url = f"http://127.0.0.1:{port['deploy']['environments']['staging']['port']}"
        answer = httpx.post(f"{url}/recommend", json={"user_id": 1, "k": 3}, timeout=30).json()
        # user 1 saw items 0, 11, 12, 13: the next by distinct users are 1 (30), 2 (20), 3 (15)
        assert (answer["items"], answer["scores"], answer["fallback"]) == (
            [1, 2, 3],
            [30.0, 20.0, 15.0],
            False,
        )
        stranger = httpx.post(f"{url}/recommend", json={"user_id": 999, "k": 2}, timeout=30).json()
        assert (stranger["items"], stranger["fallback"]) == ([0, 1], True)
    finally:
        conveyor(site, project, "env", "stop", "--env", "staging")


def test_without_the_plugin_its_model_type_is_refused_in_one_line(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "conveyor.yaml").write_text("model: {type: most-users}\n")
    done = conveyor(None, project, "config", "check")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(
        f"conveyor: ConfigError: {project / 'conveyor.yaml'}: model.type: Input should be 'random-forest', "
        "'xgboost', 'lightgbm', 'als' or 'bpr'"
    )
    assert "'most-users'" in line
