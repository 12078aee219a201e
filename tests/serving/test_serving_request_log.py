"""The request log: durable Parquet files written off the request path, read back by read_request_log."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
from serving_support import ToyRecommender, live_server

from conveyor.config import Settings
from conveyor.serving import (
    FEEDBACK_SCHEMA,
    PREDICTION_SCHEMA,
    RequestLog,
    StaticLoader,
    create_app,
    read_request_log,
)

pytestmark = pytest.mark.xdist_group("serving")


def _log_one(log: RequestLog, i: int) -> None:
    log.log_prediction(
        request_id=f"r{i}",
        env="production",
        model_version="3",
        variant="primary",
        endpoint="/predict",
        user_id=i,
        features=[{"x": i}],
        output={"predictions": ["yes"]},
        latency_ms=1.5,
        status=200,
    )


def test_rolls_files_by_rows_and_reads_them_back(tmp_path: Path) -> None:
    log = RequestLog(tmp_path, flush_rows=3, flush_seconds=60)
    log.start()
    for i in range(7):
        _log_one(log, i)
    deadline = time.monotonic() + 10
    while read_request_log(tmp_path)[0].height < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert read_request_log(tmp_path)[0].height >= 6  # written by the background thread, unprompted
    log.close()
    predictions, feedback = read_request_log(tmp_path)
    assert predictions.schema == pl.Schema(PREDICTION_SCHEMA)
    assert feedback.schema == pl.Schema(FEEDBACK_SCHEMA)
    assert feedback.height == 0
    assert sorted(predictions["request_id"]) == [f"r{i}" for i in range(7)]
    row = predictions.filter(pl.col("request_id") == "r4").row(0, named=True)
    assert row["user_id"] == "4"
    assert json.loads(row["features"]) == [{"x": 4}]
    assert json.loads(row["output"]) == {"predictions": ["yes"]}
    assert not list(tmp_path.glob(".*.tmp"))
    later, _ = read_request_log(tmp_path, since=datetime.now(UTC) + timedelta(minutes=1))
    assert later.height == 0


def test_empty_or_missing_directory_gives_empty_frames(tmp_path: Path) -> None:
    predictions, feedback = read_request_log(tmp_path / "nothing-yet")
    assert predictions.height == feedback.height == 0
    assert list(predictions.columns) == list(PREDICTION_SCHEMA)


def test_a_crash_loses_only_the_unflushed_records(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from conveyor.serving import RequestLog
        log = RequestLog(Path({str(tmp_path)!r}), flush_rows=1000, flush_seconds=3600)
        for i in range(250):
            log.log_feedback(request_id=None, user_id=i, item_id=7, event="click",
                             model_version="1", variant="primary")
        log.flush()
        for i in range(250, 260):
            log.log_feedback(request_id=None, user_id=i, item_id=7, event="click",
                             model_version="1", variant="primary")
        os._exit(9)  # crash: no close, no final flush
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr
    _, feedback = read_request_log(tmp_path)
    assert feedback.height == 250  # exactly the flushed batch survives; the 10 unflushed are lost
    assert sorted(int(u) for u in feedback["user_id"]) == list(range(250))


def test_server_logs_each_answer_and_feedback_with_its_version(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"serving": {"request_log": {"flush_rows": 1000, "flush_seconds": 0.2}}}
    )
    app = create_app(
        settings, loader=StaticLoader({"5": ToyRecommender()}, initial=["5"]), env="staging", log_dir=tmp_path
    )
    with live_server(app) as url:
        rec = httpx.post(f"{url}/recommend", json={"user_id": 1, "k": 2}).json()
        httpx.post(f"{url}/recommend", json={"user_id": "new", "k": 2})
        httpx.post(f"{url}/feedback", json={"request_id": rec["request_id"], "item_id": 2, "event": "click"})
        deadline = time.monotonic() + 10  # flushed by time while the server runs
        while not list(tmp_path.glob("feedback-*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob("feedback-*.parquet"))
    predictions, feedback = read_request_log(tmp_path)
    assert predictions.height == 2
    first = predictions.filter(pl.col("request_id") == rec["request_id"]).row(0, named=True)
    assert (first["env"], first["model_version"], first["variant"], first["endpoint"]) == (
        "staging",
        "5",
        "primary",
        "/recommend",
    )
    assert (first["user_id"], first["status"]) == ("1", 200)
    assert json.loads(first["features"]) == {"k": 2, "exclude_seen": True}
    assert json.loads(first["output"])["items"] == [2, 3]
    assert first["latency_ms"] > 0
    click = feedback.row(0, named=True)
    assert (click["request_id"], click["item_id"], click["event"]) == (rec["request_id"], "2", "click")
    assert (click["model_version"], click["variant"]) == ("5", "primary")
