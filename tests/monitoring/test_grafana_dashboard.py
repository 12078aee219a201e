"""Every query of the Grafana dashboard uses a metric the server (or the monitor) really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.config import Settings
from conveyor.monitoring import run_monitor
from conveyor.project import Project
from conveyor.serving import StaticLoader, create_app

DASHBOARD = Path(__file__).resolve().parents[2] / "grafana" / "conveyor-dashboard.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exported(text: str) -> set[str]:
    """Series names from the ``# TYPE`` lines of a Prometheus text exposition."""
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
        # newer prometheus_client versions name a counter's family with its _total suffix
        family = name.removesuffix("_total") if kind == "counter" else name
        names.update(family + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return names


def _queried() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs, "the dashboard has no queries"
    return {name for e in exprs for name in re.findall(r"\bconveyor_[a-z0-9_]+\b", e)}


@pytest.fixture
def server_metrics(tmp_path) -> set[str]:
    app = create_app(Settings(), loader=StaticLoader({}), log_dir=tmp_path / "log")
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    return _exported(response.text)


def test_every_dashboard_metric_is_exported(server_metrics, make_project):
    project = Project.load(make_project("monitoring:\n  retrain: {action: none}\n"))
    result = run_monitor(project)
    monitor_metrics = _exported(Path(result.files["prometheus"]).read_text())
    missing = _queried() - server_metrics - monitor_metrics
    assert not missing, f"dashboard queries metrics nobody exports: {sorted(missing)}"
    # the panels the issue asks for, by the metric each reads
    wanted = {
        "conveyor_requests_total",
        "conveyor_request_latency_seconds_bucket",
        "conveyor_request_errors_total",
        "conveyor_feedback_events_total",
        "conveyor_monitor_drift_share",
    }
    assert wanted <= _queried()  # fmt: skip


def test_dashboard_is_importable_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "conveyor-models"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
