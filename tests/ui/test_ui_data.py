"""The data page against real monitor runs, a real validation and `conveyor drift`: the numbers
on the page equal the reports the CLI wrote, the charts are drawn, a corrupt report is one line."""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from fastapi.testclient import TestClient
from support_ui import cells, get, problems

from conveyor.data import build_profile
from conveyor.project import Project
from conveyor.ui import create_ui_app

sys.path.insert(0, str(Path(__file__).parents[1] / "monitoring"))
from monitoring_logs import write_request_log

CONFIG = """project: {name: shop, template: classifier}
model: {type: random-forest}
monitoring:
  min_requests: 50
  retrain: {action: none}
"""


def _features(n: int, shift: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "age": rng.normal(40 + shift, 10, n).round(1),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]).tolist(),
    })  # fmt: skip


def _requests(features: pl.DataFrame, start: datetime) -> pl.DataFrame:
    n = features.height
    rows = [json.dumps([row]) for row in features.iter_rows(named=True)]
    return pl.DataFrame({
        "ts": [start + timedelta(milliseconds=i) for i in range(n)],
        "request_id": [f"{start.microsecond:08d}{i:024x}" for i in range(n)], "env": "production",
        "model_version": "1", "variant": "primary", "endpoint": "/predict", "user_id": None,
        "features": rows, "output": '{"predictions": ["0"], "probabilities": [[0.7, 0.3]]}',
        "latency_ms": 5.0, "status": 200,
    })  # fmt: skip


def test_the_data_page_shows_the_monitor_runs_the_validation_and_the_drift(cli, make_project, tmp_path):
    root = make_project(CONFIG)
    project = Project.load(root)
    build_profile(_features(2000, 0, seed=1)).save(project.reference_profile_path)
    log = project.state_dir / "requests" / "production"
    reports = []
    for part, shift in enumerate((0.0, 12.0)):  # a quiet window, then age shifted by 1.2 sd
        start = datetime.now(UTC)  # after the previous run's window: this run reads these requests
        write_request_log(log, _requests(_features(400, shift, seed=10 + part), start), part=part)
        # the last request (start + 0.4 s) is in the past when the monitor runs, and the two runs'
        # report folders differ: a monitor report is stamped to the second (monitoring/_monitor.py)
        time.sleep(1.1)
        done = cli("monitor", "--project", root, "--json")
        reports.append(done.json())
    assert [r["counts"]["requests"] for r in reports] == [400, 400]
    assert reports[1]["drifted_columns"] == ["age"]

    # a validation with failures, and `conveyor drift`, recorded as stage results
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    _features(300, 0, seed=2).write_csv(good)
    pl.concat(
        [_features(50, 0, seed=3), pl.DataFrame({"age": [-5.0, 300.0], "plan": ["gold", "pro"]})]
    ).write_csv(bad)
    schema = tmp_path / "schema.yaml"
    assert cli("schema", "infer", good, "--out", schema).exit_code == 0
    validated = cli("validate", bad, "--schema", schema, "--project", root, "--json")
    assert validated.exit_code == 1
    failures = validated.json()["failures"]
    assert failures
    drift = cli("drift", good, bad, "--project", root, "--json").json()

    client = TestClient(create_ui_app(Project.load(root)))
    page = get(client, "/data")
    production = page.split('id="data-production"')[1].split("</section>")[0]
    assert problems(production) == []
    latest = {c["name"]: c for c in reports[1]["checks"]}["input_drift"]["details"]["columns"]
    live = production.split('data-drift="input_drift"')[1]
    for name, col in latest.items():
        row = cells(live, "data-column", name)
        assert row[3] == f"{col['statistic']:.4g}"
        assert row[7] == ("yes" if col["drift"] else "no")
    # each column's distributions and its distance over both runs, as inline SVG
    age = live.split('data-chart="input_drift:age"')[1].split("</figure>")[0]
    assert age.count("<svg") == 2
    assert 'aria-label="age: wasserstein: distance over 2 runs"' in age
    assert "threshold" in age
    assert "out of schema" in production  # the share of flagged requests, per run
    assert f"{reports[1]['counts']['requests']} requests" in production

    pipeline = page.split('id="h-pipeline"')[1]
    for f in failures:
        row = cells(pipeline, "data-failure", f"{f['rule']}:{f['column']}")
        assert row[2] == str(f["n_rows"])
    for name, col in drift["columns"].items():
        assert (
            cells(pipeline.split("conveyor drift per column")[1], "data-column", name)[3]
            == f"{col['statistic']:.4g}"
        )

    # a corrupt report is one line; the other runs, and the rest of the page, still show
    corrupt = project.state_dir / "monitoring" / "production" / "29990101T000000Z"
    corrupt.mkdir(parents=True)
    (corrupt / "report.json").write_text("{not json")
    page = get(client, "/data")
    lines = problems(page)
    assert len([line for line in lines if line.startswith("monitor report: ")]) == 1
    assert 'data-drift="input_drift"' in page
    # the stage results' history cannot be read (the state store skips a torn line, but not this)
    shutil.rmtree(project.state_dir / "results")
    (project.state_dir / "results" / "history.jsonl").mkdir(parents=True)
    page = get(client, "/data")
    assert any(line.startswith("validation: ") for line in problems(page)), problems(page)
    assert 'data-drift="input_drift"' in page
