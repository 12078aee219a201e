"""The loop closed on simulated shop data: a normal week passes, a shifted week alerts and retrains.

The request log is written directly in the documented Parquet format (the
durable interface between the server and the monitor), one recommendation
request per simulated session and one feedback event per interaction.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from monitoring_logs import write_request_log

from conveyor.data import build_profile

try:
    from conveyor.data import ShopConfig, ShopDrift, ShopWorld
except ImportError:  # until the shop generator is re-exported by conveyor.data
    from conveyor.data._shop import ShopConfig, ShopDrift, ShopWorld
from conveyor.monitoring import run_monitor
from conveyor.project import Project

pytestmark = pytest.mark.xdist_group("monitoring-receiver")

TRAIN_START = date(2026, 10, 19)
WEEK1 = date(2026, 11, 2)
WEEK2 = date(2026, 11, 9)
TOKEN = "ghp_ScenarioToken"
EVENT_NAMES = {"view": "click", "add_to_cart": "add_to_cart", "purchase": "purchase"}


def _log_frames(events: pl.DataFrame, top_items: list[str], seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One /recommend request per session (at its first event), one feedback row per event."""
    rng = np.random.default_rng(seed)
    sessions = (
        events.group_by("session_id")
        .agg(pl.col("timestamp").min(), pl.col("user_id").first())
        .sort("session_id")
    )
    n = sessions.height
    request_ids = [f"{seed:02d}{i:030d}" for i in range(n)]
    output = json.dumps({"items": top_items, "scores": [1.0] * len(top_items), "fallback": False})
    predictions = pl.DataFrame(
        {
            "ts": sessions["timestamp"] - timedelta(seconds=1),
            "request_id": request_ids,
            "env": "production",
            "model_version": "1",
            "variant": "primary",
            "endpoint": "/recommend",
            "user_id": sessions["user_id"].cast(pl.String),
            "features": json.dumps({"k": len(top_items), "exclude_seen": True}),
            "output": output,
            "latency_ms": rng.gamma(4.0, 3.0, n),
            "status": 200,
        }
    )
    by_session = dict(zip(sessions["session_id"].to_list(), request_ids, strict=True))
    # a tenth of the views are clicks on the recommendations; carts and purchases all count
    clicked = (pl.col("event") != "view") | pl.Series(rng.random(events.height) < 0.1)
    feedback = events.filter(clicked).select(
        pl.col("timestamp").alias("ts"),
        pl.col("session_id").replace_strict(by_session).alias("request_id"),
        pl.col("user_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        pl.col("event").replace_strict(EVENT_NAMES),
        pl.lit("1").alias("model_version"),
        pl.lit("primary").alias("variant"),
    )
    return predictions, feedback


def test_normal_week_passes_then_shifted_week_alerts_once_and_dispatches_once(
    make_project, receiver, monkeypatch
):
    monkeypatch.setenv("SCENARIO_HOOK", receiver.url("/hooks/ops"))
    monkeypatch.setenv("SCENARIO_TOKEN", TOKEN)
    root = make_project(
        "monitoring:\n  min_requests: 100\n  retrain:\n    action: github\n    cooldown_hours: 24\n"
        "    github:\n      repository: acme/shop\n      workflow: weekly-retrain.yml\n"
        f"      token_env: SCENARIO_TOKEN\n      api_url: {receiver.url('')}\n"
        "alerts:\n  cooldown_minutes: 60\n"
        "  channels:\n    - {name: ops, kind: webhook, url_env: SCENARIO_HOOK}\n"
    )
    project = Project.load(root)
    world = ShopWorld.create(ShopConfig(n_users=800, n_items=400, seed=3))
    training = world.simulate(TRAIN_START, 14)
    project.data_source.parent.mkdir(parents=True)
    training.write_parquet(project.data_source)
    build_profile(training, ["event", "price", "category"]).save(project.reference_profile_path)
    organic = training.filter(pl.col("event") != "view")  # what `train` profiles for live feedback
    build_profile(organic, ["price", "category"]).save(project.live_reference_profile_path)
    top = training["item_id"].value_counts(sort=True).head(10)["item_id"].cast(pl.String).to_list()
    log_dir = project.state_dir / "requests" / "production"

    normal = world.simulate(WEEK1, 7)
    write_request_log(log_dir, *_log_frames(normal, top, seed=1), part=1)
    week1_end = datetime(2026, 11, 9, tzinfo=UTC)
    first = run_monitor(project, now=week1_end)
    assert first.ok, first.report["checks"]
    assert first.report["counts"]["requests"] > 1000
    assert receiver.requests == []

    shifted = world.simulate(WEEK2, 7, drift=ShopDrift(new_category=True, popularity_shift=0.8))
    write_request_log(log_dir, *_log_frames(shifted, top, seed=2), part=2)
    week2_end = datetime(2026, 11, 16, tzinfo=UTC)
    second = run_monitor(project, now=week2_end)
    assert not second.ok
    assert "input_drift" in second.failed_checks
    drifted = second.report["drifted_columns"]
    assert "category" in drifted
    # the window started where the first run ended: no request of week 1 counted again
    assert second.report["window"]["since"] == week1_end.isoformat()
    assert (
        second.report["counts"]["requests"]
        == pl.read_parquet(next(log_dir.glob("predictions-*-000002.parquet"))).height
    )

    [alert] = receiver.at("/hooks/ops")
    body = alert.json()
    assert body["fields"]["drifted columns"] == ", ".join(drifted)
    assert "input_drift" in body["text"]
    [dispatch] = receiver.at("/repos/acme/shop/actions/workflows/weekly-retrain.yml/dispatches")
    assert dispatch.headers["authorization"] == f"Bearer {TOKEN}"
    assert dispatch.headers["accept"] == "application/vnd.github+json"
    assert dispatch.headers["x-github-api-version"] == "2022-11-28"
    assert dispatch.json()["ref"] == "main"
    assert "dataset drift" in dispatch.json()["inputs"]["reason"]
    assert second.report["retrain"]["status"] == "dispatched"

    # a second look at the same week within both cooldowns: it still fails, but sends nothing
    third = run_monitor(project, now=week2_end + timedelta(hours=1), since=timedelta(days=7, hours=1))
    assert not third.ok
    assert [d["status"] for d in third.report["alert"]["deliveries"]] == ["suppressed"]
    assert third.report["retrain"]["status"] == "cooldown"
    assert len(receiver.requests) == 2

    html = Path(second.files["html"]).read_text()
    assert "<svg" in html
    assert "input_drift: category (drifted)" in html
    prom = Path(second.files["prometheus"]).read_text()
    assert 'conveyor_monitor_check_status{check="input_drift",env="production"} 1.0' in prom
