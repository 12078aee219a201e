"""The canary analysis counts model errors (500 model_error) from the request log, read through
conveyor.serving's reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from conveyor.deploy._observations import canary_samples
from conveyor.project import Project
from conveyor.serving import CLIENT_ERROR, MODEL_ERROR, OK, PREDICTION_SCHEMA


def test_canary_samples_count_model_errors(make_project) -> None:
    root = make_project("project: {name: shop}\n")
    since = datetime.now(UTC) - timedelta(minutes=5)
    # stable "1": 100 answers, 3 client errors; candidate "2": 100 answers, 20 model errors, 3 client errors
    outcomes = {"1": [OK] * 97 + [CLIENT_ERROR] * 3, "2": [OK] * 77 + [MODEL_ERROR] * 20 + [CLIENT_ERROR] * 3}
    status = {OK: 200, MODEL_ERROR: 500, CLIENT_ERROR: 422}
    records = [(version, outcome) for version, seq in outcomes.items() for outcome in seq]
    n = len(records)
    rows = {name: [None] * n for name in PREDICTION_SCHEMA}
    rows["ts"] = [since + timedelta(seconds=1 + i) for i in range(n)]
    rows["model_version"] = [v for v, _ in records]
    rows["endpoint"] = ["/recommend"] * n
    rows["outcome"] = [o for _, o in records]
    rows["status"] = [status[o] for _, o in records]
    rows["latency_ms"] = [5.0] * n
    log = root / ".conveyor" / "requests" / "production"
    log.mkdir(parents=True)
    pl.DataFrame(rows, schema=PREDICTION_SCHEMA).write_parquet(log / "predictions-test.parquet")
    stable, candidate = canary_samples(Project.load(root), "production", since, "1", "2")
    assert (stable.requests, stable.errors) == (100, 3)
    assert (candidate.requests, candidate.errors) == (100, 23)
    assert len(candidate.latencies_ms) == 77  # latency of successful answers only
