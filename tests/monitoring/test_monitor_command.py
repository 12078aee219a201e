"""`conveyor monitor` end to end on a small request log: verdicts, state, reports, exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from monitoring_logs import write_request_log

from conveyor.monitoring import monitor_history
from conveyor.project import Project

pytestmark = pytest.mark.xdist_group("monitoring-receiver")


def _predictions(n: int, latency: float, *, errors: int = 0) -> pl.DataFrame:
    now = datetime.now(UTC)
    rng = np.random.default_rng(0)
    return pl.DataFrame({
        "ts": [now - timedelta(minutes=30) + timedelta(seconds=i) for i in range(n)],
        "request_id": [f"{i:032x}" for i in range(n)], "env": "production", "model_version": "2",
        "variant": "primary", "endpoint": "/recommend", "user_id": [str(i % 50) for i in range(n)],
        "features": '{"k": 3, "exclude_seen": true}',
        "output": '{"items": ["1", "2", "3"], "scores": [3, 2, 1], "fallback": false}',
        "latency_ms": rng.normal(latency, 1.0, n).clip(0.1), "status": [500] * errors + [200] * (n - errors),
    })  # fmt: skip


def test_monitor_passes_then_does_not_count_the_same_requests_twice(cli, make_project):
    root = make_project("monitoring:\n  min_requests: 50\n  retrain:\n    action: none\n")
    write_request_log(root / ".conveyor" / "requests" / "production", _predictions(200, 10.0))
    first = cli("monitor", "--project", root, "--json")
    assert first.exit_code == 0, first.stderr
    report = first.json()
    assert report["counts"]["requests"] == 200
    verdicts = {c["name"]: c["status"] for c in report["checks"]}
    assert verdicts["errors"] == "pass"
    assert verdicts["latency"] == "pass"
    assert verdicts["input_drift"] == "skipped"  # no reference profile yet
    assert json.loads(Path(report["files"]["json"]).read_text())["ok"] is True
    assert "<svg" in Path(report["files"]["html"]).read_text()
    again = cli("monitor", "--project", root, "--json").json()
    assert again["counts"]["requests"] == 0
    assert {c["status"] for c in again["checks"]} <= {"insufficient_data", "skipped"}
    recount = cli("monitor", "--project", root, "--json", "--since", "2h").json()
    assert recount["counts"]["requests"] == 200
    # three runs within a second or two: each keeps its own report, and the history has all three
    assert len({r["files"]["json"] for r in (report, again, recount)}) == 3
    history = monitor_history(Project.load(root), "production")
    assert [r["counts"]["requests"] for r in history.reports] == [200, 0, 200]


def test_a_latency_breach_exits_1_with_the_report(cli, make_project, tmp_path):
    root = make_project(
        "monitoring:\n  min_requests: 50\n  slo: {p99_latency_ms: 20}\n  retrain: {action: none}\n"
    )
    write_request_log(root / ".conveyor" / "requests" / "production", _predictions(200, 40.0, errors=10))
    result = cli("monitor", "--project", root, "--json", "--report-dir", tmp_path / "out")
    assert result.exit_code == 1
    report = result.json()
    assert report["ok"] is False
    assert set(report["failed_checks"]) == {"errors", "latency"}
    assert "DegradationFound" in result.stderr
    assert (tmp_path / "out" / "report.md").read_text().count("❌ fail") == 2
    assert report["alert"]["deliveries"] == []  # no channel configured


def test_too_few_requests_is_insufficient_data_not_a_verdict(cli, make_project):
    root = make_project("monitoring:\n  slo: {p99_latency_ms: 1}\n")
    write_request_log(root / ".conveyor" / "requests" / "production", _predictions(20, 40.0))
    result = cli("monitor", "--project", root, "--json")
    assert result.exit_code == 0
    assert {c["name"]: c["status"] for c in result.json()["checks"]}["latency"] == "insufficient_data"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--since", "soon"], "--since 'soon'"), (["--env", "moon"], "--env moon: no such environment")],
)
def test_bad_options_are_usage_errors(cli, make_project, args, message):
    result = cli("monitor", "--project", make_project(""), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0
