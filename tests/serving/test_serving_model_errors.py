"""Errors are errors: a model that raises is a 500 ``model_error``, counted and logged as such,
distinct from a client's invalid input (422)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from serving_support import FailingToy, live_server

from conveyor.config import Settings
from conveyor.serving import CLIENT_ERROR, MODEL_ERROR, OK, StaticLoader, create_app, read_request_log

pytestmark = pytest.mark.xdist_group("serving")

SETTINGS = Settings.model_validate(
    {
        "project": {"template": "classifier"},
        "model": {"type": "random-forest"},
        "serving": {"request_log": {"flush_seconds": 0.1}},
    }
)


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_a_model_exception_is_a_500_model_error_counted_and_logged(tmp_path: Path) -> None:
    app = create_app(SETTINGS, loader=StaticLoader({"1": FailingToy(13.0)}, initial=["1"]), log_dir=tmp_path)
    with live_server(app) as url:
        ok = httpx.post(f"{url}/predict", json={"features": {"x": 1.0, "y": 0, "color": "red"}})
        failed = httpx.post(f"{url}/predict", json={"features": {"x": 13.0, "y": 0, "color": "red"}})
        invalid = httpx.post(f"{url}/predict", json={"features": {"x": "13", "y": 0, "color": "red"}})
        # in a batch, the one bad row fails its own request only
        batch = httpx.post(f"{url}/predict", json={"rows": [{"x": 2.0, "y": 0, "color": "red"}] * 3})
        metrics = httpx.get(f"{url}/metrics").text
    assert ok.status_code == 200
    assert batch.status_code == 200
    assert failed.status_code == 500
    body = failed.json()
    assert body["error"] == "model_error"
    assert body["field"] is None
    assert "ZeroDivisionError" in body["detail"]
    assert (invalid.status_code, invalid.json()["field"]) == (422, "features.x")
    assert _metric(metrics, "conveyor_model_errors_total") == 1
    assert 'conveyor_request_errors_total{code="500"' in metrics
    predictions, _ = read_request_log(tmp_path)
    outcomes = dict(zip(predictions["status"].to_list(), predictions["outcome"].to_list(), strict=True))
    assert outcomes == {200: OK, 500: MODEL_ERROR, 422: CLIENT_ERROR}


def test_old_request_log_files_read_with_an_outcome_from_their_status(tmp_path: Path) -> None:
    """Files written before the outcome column existed still read, outcome derived from status."""
    import polars as pl

    from conveyor.serving import PREDICTION_SCHEMA

    old_schema = {k: v for k, v in PREDICTION_SCHEMA.items() if k not in ("outcome", "warnings")}
    rows = {name: [None, None] for name in old_schema}
    rows["ts"] = [1_700_000_000_000_000, 1_700_000_001_000_000]
    rows["status"] = [200, 503]
    frame = pl.DataFrame(rows, schema={**old_schema, "ts": pl.Int64}).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC"))
    )
    frame.write_parquet(tmp_path / "predictions-old.parquet")
    predictions, _ = read_request_log(tmp_path)
    assert predictions["outcome"].to_list() == [OK, "server_error"]
    assert predictions["warnings"].to_list() == [None, None]


def test_scan_request_log_windows_and_columns(tmp_path: Path) -> None:
    """The one reader the monitor uses: ``(since, until]``, only the asked columns, outcome filled."""
    from datetime import UTC, datetime, timedelta

    import polars as pl

    from conveyor.serving import PREDICTION_SCHEMA, PREDICTIONS, scan_request_log

    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = {name: [None] * 4 for name in PREDICTION_SCHEMA}
    rows["ts"] = [start + timedelta(minutes=i) for i in range(4)]
    rows["status"] = [200, 500, 422, 200]
    rows["outcome"] = [OK, MODEL_ERROR, CLIENT_ERROR, OK]
    pl.DataFrame(rows, schema=PREDICTION_SCHEMA).write_parquet(tmp_path / "predictions-a.parquet")
    window = scan_request_log(
        tmp_path,
        PREDICTIONS,
        ("status", "outcome"),
        since=start,  # left-open: the request at `start` belongs to the previous window
        until=(start + timedelta(minutes=2)).replace(tzinfo=None),  # naive is UTC
    )
    assert window.columns == ["status", "outcome"]
    assert window.rows() == [(500, MODEL_ERROR), (422, CLIENT_ERROR)]
    empty = scan_request_log(tmp_path / "none", PREDICTIONS, ("outcome",))
    assert (empty.height, empty.schema["outcome"]) == (0, pl.String)
