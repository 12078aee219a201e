"""The monitor's gauges for Prometheus, as a node_exporter textfile-collector file.

The model server exports traffic, latency, errors and feedback itself
(``docs/serving.md``); what only a monitor run knows — the share of drifted
input columns, each check's verdict, the online metric against its baseline —
is written after every run to ``<state_dir>/monitoring/metrics/
conveyor-monitor-<env>.prom``. Point node_exporter's
``--collector.textfile.directory`` at that folder and the Grafana dashboard's
"drift share" panel reads ``conveyor_monitor_drift_share``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from conveyor.monitoring._state import monitoring_dir
from conveyor.project import Project

# verdict → gauge value of conveyor_monitor_check_status
CHECK_VALUES = {"pass": 0.0, "fail": 1.0, "insufficient_data": -1.0, "skipped": -2.0}
MONITOR_METRICS = (
    "conveyor_monitor_drift_share",
    "conveyor_monitor_check_status",
    "conveyor_monitor_online_metric",
    "conveyor_monitor_window_requests",
    "conveyor_monitor_last_run_timestamp_seconds",
)


def write_monitor_metrics(
    project: Project, env: str, report: dict[str, Any], drift_share: float | None, now: datetime
) -> Path:
    """Write the monitor's gauges for ``env``; the path of the file."""
    registry = CollectorRegistry()
    share = Gauge(MONITOR_METRICS[0], "Share of live input columns that drifted (last monitor run).",
                  ["env"], registry=registry)  # fmt: skip
    status = Gauge(MONITOR_METRICS[1], "Verdict per check: 0 pass, 1 fail, -1 insufficient data, -2 skipped.",
                   ["env", "check"], registry=registry)  # fmt: skip
    metric = Gauge(MONITOR_METRICS[2], "Online metric (ctr or accuracy) per model version, last window.",
                   ["env", "metric", "model_version", "variant"], registry=registry)  # fmt: skip
    requests = Gauge(MONITOR_METRICS[3], "Requests in the last monitor window.", ["env"], registry=registry)
    last = Gauge(
        MONITOR_METRICS[4], "When the last monitor run ended (Unix time).", ["env"], registry=registry
    )
    if drift_share is not None:
        share.labels(env).set(drift_share)
    for check in report["checks"]:
        status.labels(env, check["name"]).set(CHECK_VALUES[check["status"]])
        if check["name"] == "online_metric":
            for row in check["details"].get("versions", []):
                if row.get("value") is not None:
                    metric.labels(env, check["details"]["metric"], str(row["model_version"]),
                                  str(row["variant"])).set(row["value"])  # fmt: skip
    requests.labels(env).set(report["counts"]["requests"])
    last.labels(env).set(now.timestamp())
    folder = monitoring_dir(project) / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"conveyor-monitor-{env}.prom"
    write_to_textfile(str(path), registry)
    return path
