"""The data page: live drift from the monitor's runs, input problems, the latest validation.

Read through public functions only: :func:`conveyor.monitoring.monitor_history` (the
``report.json`` of each monitor run), :func:`conveyor.reports.load_history` (the latest
``validate`` and ``drift`` stage results). The charts are Matplotlib SVG drawn on the
server by :func:`conveyor.reports.distribution_svg` and :func:`conveyor.reports.trend_svg`,
kept in a bounded in-process cache keyed by the chart's data: a monitor run adds one point
to each trend every few hours, while the page is reloaded far more often, and a Matplotlib
figure costs tens of milliseconds (benchmarks/ui_pages.py, docs/benchmarks.md).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from conveyor.project import Project

DRIFT_CHECKS = ("input_drift", "prediction_drift")
MAX_CHARTED_COLUMNS = 12  # per check: the page stays quick on a wide table; the table lists them all
TESTED = ("pass", "fail")
CACHED_CHARTS = 512  # SVGs of a few tens of kB each: a few columns × checks × environments, with room


@lru_cache(maxsize=CACHED_CHARTS)
def _drawn(kind: str, arguments: str) -> str:
    """The SVG of ``kind`` (``distribution`` or ``trend``) for its arguments as JSON (the cache key)."""
    from conveyor.reports import distribution_svg, trend_svg

    args, options = json.loads(arguments)
    return distribution_svg(*args) if kind == "distribution" else trend_svg(*args, **options)


def _chart(kind: str, *args: Any, **options: Any) -> str:
    return _drawn(kind, json.dumps([args, options], sort_keys=True, default=str))


def _columns(report: dict[str, Any], check: str) -> dict[str, dict[str, Any]] | None:
    for c in report.get("checks", []):
        if c.get("name") == check and c.get("status") in TESTED:
            columns = (c.get("details") or {}).get("columns")
            return columns if isinstance(columns, dict) else None
    return None


def _distribution(report: dict[str, Any], check: str, column: str) -> dict[str, Any] | None:
    # the monitor titles a column's plot "<check>: <column>" (plus " (drifted)")
    for plot in report.get("plots", []):
        title = str(plot.get("title", ""))
        if title in (f"{check}: {column}", f"{check}: {column} (drifted)"):
            return dict(plot)
    return None


def _window_end(report: dict[str, Any]) -> str:
    return str((report.get("window") or {}).get("until") or "?")


def drift_view(reports: list[dict[str, Any]], check: str) -> dict[str, Any] | None:
    """The latest tested run of ``check``: per column its numbers, its distributions drawn, and
    its distance over every run with the threshold drawn; None when no run tested it."""
    tested = [(r, cols) for r in reports if (cols := _columns(r, check))]
    if not tested:
        return None
    latest, columns = tested[-1]
    rows = []
    for i, (name, col) in enumerate(sorted(columns.items())):
        chart = trend = None
        if i < MAX_CHARTED_COLUMNS:
            plot = _distribution(latest, check, name)
            if plot is not None:
                series = plot.get("series", {})
                chart = _chart(
                    "distribution",
                    f"{name} ({check.replace('_', ' ')})",
                    str(plot.get("kind")),
                    plot.get("labels", []),
                    series.get("reference", []),
                    series.get("current", []),
                )
            values = [(cols.get(name) or {}).get("statistic") for _, cols in tested]
            trend = _chart(
                "trend",
                f"{name}: {col.get('test', 'distance')}",
                [_window_end(r) for r, _ in tested],
                values,
                threshold=col.get("threshold"),
            )
        rows.append({"name": name, **col, "chart": chart, "trend": trend})
    return {"check": check, "until": _window_end(latest), "runs": len(tested), "columns": rows}


def input_problems(reports: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The share of answered requests the server flagged (out of schema: unseen category, out of
    range, null) over the runs, and the latest run's counts by kind; None when never measured."""
    found = []
    for r in reports:
        for c in r.get("checks", []):
            if c.get("name") == "input_warnings" and (c.get("details") or {}).get("requests"):
                found.append((r, c["details"]))
    if not found:
        return None
    latest = found[-1][1]
    chart = _chart(
        "trend",
        "requests flagged out of schema",
        [_window_end(r) for r, _ in found],
        [d.get("share") for _, d in found],
        ylabel="share of requests",
    )
    return {"latest": latest, "chart": chart, "runs": len(found)}


def monitor_view(project: Project, env: str) -> dict[str, Any] | None:
    """What the monitor found in ``env``: its latest run, drift per column and its trend."""
    from conveyor.monitoring import monitor_history

    history = monitor_history(project, env)
    reports = history.reports
    if not reports and not history.unreadable:
        return None
    latest = history.latest or {}
    return {
        "runs": len(reports),
        "unreadable": history.unreadable,
        "latest": {
            "until": _window_end(latest),
            "since": (latest.get("window") or {}).get("since"),
            "counts": latest.get("counts", {}),
            "ok": latest.get("ok"),
            "checks": latest.get("checks", []),
        },
        "drift": [v for check in DRIFT_CHECKS if (v := drift_view(reports, check)) is not None],
        "inputs": input_problems(reports),
    }


def latest_stage(project: Project, stage: str) -> dict[str, Any] | None:
    """The latest recorded result of ``stage`` (with its time), whatever pipeline run made it."""
    from conveyor.reports import load_history

    records = load_history(project, stage)
    if not records:
        return None
    record = records[-1]
    return {"recorded_at": record.get("recorded_at"), **(record.get("payload") or {})}
