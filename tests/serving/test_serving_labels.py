"""True labels through POST /feedback reach the monitor: accuracy per served version."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from serving_support import ToyClassifier, live_server

from conveyor.config import Settings
from conveyor.monitoring import run_monitor
from conveyor.project import Project
from conveyor.serving import StaticLoader, create_app, read_request_log

pytestmark = pytest.mark.xdist_group("serving")

CONFIG = """\
project: {name: labels, template: classifier}
model: {type: random-forest}
monitoring: {min_requests: 5, retrain: {action: none}}
serving: {request_log: {flush_seconds: 0.2}}
"""


def test_label_feedback_gives_the_monitor_the_accuracy_of_the_version(make_project: Any) -> None:
    project = Project.load(make_project(CONFIG))
    log_dir = project.state_dir / "requests" / "production"
    app = create_app(
        project.settings,
        loader=StaticLoader({"3": ToyClassifier()}, initial=["3"]),
        env="production",
        log_dir=log_dir,
    )
    # P(yes) = x / 10: x = 9, 8, 7 → "yes"; x = 1, 2 → "no"
    truth = {9: "yes", 8: "yes", 7: "no", 1: "no", 2: "yes"}  # 3 of 5 answers right
    with live_server(app) as url:
        for x, label in truth.items():
            answer = httpx.post(f"{url}/predict", json={"features": {"x": x, "y": 0, "color": "red"}}).json()
            assert answer["predictions"] == ["yes" if x > 5 else "no"]
            body = {"request_id": answer["request_id"], "label": label}
            if x == 9:
                body["event"] = "label"  # the explicit form
            r = httpx.post(f"{url}/feedback", json=body)
            assert r.status_code == 202, r.text
            assert r.json() == {
                "accepted": True,
                "request_id": answer["request_id"],
                "model_version": "3",
                "variant": "primary",
            }
        metrics = httpx.get(f"{url}/metrics").text
    assert 'conveyor_feedback_events_total{event="label",model_version="3",variant="primary"} 5.0' in metrics

    # the server flushed its log on shutdown: labels are rows with event "label", the class in item_id
    _, feedback = read_request_log(log_dir)
    assert sorted(feedback["item_id"]) == sorted(truth.values())
    assert set(feedback["event"]) == {"label"}
    assert set(feedback["model_version"]) == {"3"}

    result = run_monitor(project, env="production", since=timedelta(hours=1))
    online = next(c for c in result.report["checks"] if c["name"] == "online_metric")
    assert online["details"]["metric"] == "accuracy"
    rows = online["details"]["versions"]
    assert [(r["model_version"], r["variant"], r["n"]) for r in rows] == [("3", "primary", 5)]
    assert rows[0]["value"] == pytest.approx(0.6)
    assert online["status"] == "pass"  # the first measured value is the version's baseline


def test_integer_and_boolean_labels_are_logged_as_json_writes_them(tmp_path: Path) -> None:
    settings = Settings.model_validate({"serving": {"request_log": {"flush_seconds": 0.2}}})
    app = create_app(settings, loader=StaticLoader({"1": ToyClassifier()}, initial=["1"]), log_dir=tmp_path)
    with live_server(app) as url:
        for label in (1, True, "churned"):
            r = httpx.post(f"{url}/feedback", json={"request_id": "not-remembered", "label": label})
            assert r.status_code == 202, r.text
            assert r.json()["model_version"] is None  # an unknown request id: no version to credit
    _, feedback = read_request_log(tmp_path)
    assert feedback.sort("ts")["item_id"].to_list() == ["1", "true", "churned"]
    assert feedback.filter(pl.col("event") != "label").height == 0
