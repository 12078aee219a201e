"""The report: candidate against production, gates, drift, A/B — as Markdown or HTML.

The Markdown is made for a pull-request comment and the job summary (GitHub
tables, no HTML); the HTML adds the plots (metric history, drift statistics and
histograms, A/B lift with its interval) as inline SVG drawn by
:mod:`conveyor.rendering`. This module turns the stage results into rows and
lines (shared by both forms); the layout is in ``templates/report.md`` and
``templates/report.html`` (Jinja2; the HTML one escapes every value).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from conveyor.project import Project
from conveyor.rendering import bars_svg, distribution_svg, interval_svg, render_template, trend_svg
from conveyor.reports._store import load_history, load_stage_results

KNOWN = ("evaluate", "drift", "ab")
_TEMPLATES = "conveyor.reports"  # the package whose templates/ folder holds report.md and report.html


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: Any) -> str:
    number = _num(value)
    if number is None:
        return "–" if value is None else str(value)
    return f"{number:.4g}"


# -- sections as rows (shared by Markdown and HTML) --------------------------------------
def metric_rows(evaluate: dict[str, Any]) -> list[list[str]]:
    """metric, candidate, production, delta, relative delta."""
    metrics = evaluate.get("metrics") or {}
    production = evaluate.get("production_metrics") or {}
    rows = []
    for name, value in metrics.items():
        cand, prod = _num(value), _num(production.get(name))
        delta = cand - prod if cand is not None and prod is not None else None
        rel = f"{delta / abs(prod):+.1%}" if delta is not None and prod else "–"
        rows.append([name, _fmt(cand), _fmt(prod), f"{delta:+.4g}" if delta is not None else "–", rel])
    return rows


_MARKS = {"pass": "✅ pass", "fail": "❌ fail", "skip": "⏭️ skip", "inconclusive": "❔ inconclusive"}
_TALLY = (("pass", "passed"), ("fail", "failed"), ("inconclusive", "inconclusive"), ("skip", "skipped"))


def gate_verdict(gate: dict[str, Any]) -> str:
    """``pass``, ``fail``, ``skip`` or ``inconclusive`` (records without a verdict: from ``passed``)."""
    verdict = gate.get("verdict")
    if verdict in _MARKS:
        return str(verdict)
    return "pass" if gate.get("passed") else "fail"


def gate_rows(evaluate: dict[str, Any]) -> list[list[str]]:
    rows = []
    for gate in evaluate.get("gates") or []:
        if isinstance(gate, dict):
            verdict = _MARKS[gate_verdict(gate)]
            rows.append([str(gate.get("name", "?")), verdict, str(gate.get("reason", ""))])
    return rows


def drift_rows(drift: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, col in (drift.get("columns") or {}).items():
        if isinstance(col, dict):
            rows.append(
                [
                    name,
                    str(col.get("type", "")),
                    str(col.get("test", "")),
                    _fmt(col.get("statistic")),
                    _fmt(col.get("threshold")),
                    _fmt(col.get("p_value")),
                    "⚠️ drift" if col.get("drift") else "ok",
                ]
            )
    return rows


def _verdict(results: dict[str, dict[str, Any]]) -> str:
    """Each verdict counted ("4 passed, 1 skipped"), the failing gates named."""
    gates = [g for g in (results.get("evaluate") or {}).get("gates") or [] if isinstance(g, dict)]
    if not gates:
        return "no quality gates recorded yet"
    verdicts = [gate_verdict(g) for g in gates]
    tally = ", ".join(f"{verdicts.count(v)} {label}" for v, label in _TALLY if v in verdicts)
    failed = [str(g.get("name", "?")) for g, v in zip(gates, verdicts, strict=True) if v == "fail"]
    if failed:
        return f"❌ {len(failed)} of {len(gates)} quality gates failed: {', '.join(failed)} ({tally})"
    if "inconclusive" in verdicts:
        return f"❔ not enough evidence to decide the quality gates ({tally})"
    return f"✅ quality gates: {tally}"


def headline(project: Project, results: dict[str, dict[str, Any]]) -> str:
    """One line: the gates' verdict, the drift verdict, the A/B decision."""
    parts = [_verdict(results)]
    drift = results.get("drift")
    if drift:
        parts.append("dataset drift" if drift.get("dataset_drift") else "no dataset drift")
    ab = results.get("ab")
    if ab and ab.get("decision"):
        parts.append(f"A/B: {ab['decision']}")
    return f"{project.settings.project.name}: " + "; ".join(parts)


def _ab_lines(ab: dict[str, Any]) -> list[str]:
    lines = []
    for arm in ("control", "variant"):
        data = ab.get(arm) or {}
        if isinstance(data, dict):
            shown = (
                f" ({_fmt(data['impressions'])} impressions)" if data.get("impressions") is not None else ""
            )
            lines.append(f"- {arm}: CTR {_fmt(data.get('ctr'))} over {_fmt(data.get('n'))} users{shown}")
    ci = ab.get("ci") or [None, None]
    lift = _num(ab.get("lift"))
    if lift is not None:
        low, high = (_num(ci[0]), _num(ci[1])) if len(ci) == 2 else (None, None)
        interval = f" (95 % CI {low:+.1%} to {high:+.1%})" if low is not None and high is not None else ""
        lines.append(f"- lift: {lift:+.1%}{interval}, p-value {_fmt(ab.get('p_value'))}")
    if ab.get("required_n") is not None:
        lines.append(f"- users needed per arm (the larger arm): {_fmt(ab.get('required_n'))}")
    lines.append(
        f"- status: {ab.get('status', '–')}; decision: {ab.get('decision', '–')} {ab.get('reason', '')}"
    )
    return lines


def _run_id(results: dict[str, dict[str, Any]]) -> str | None:
    """Which training run the report is about (the run id ties train, evaluate and register)."""
    run_ids = {str(p["run_id"]) for p in results.values() if isinstance(p, dict) and p.get("run_id")}
    return run_ids.pop() if len(run_ids) == 1 else None


def _context(project: Project, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What both templates show: the verdict, and each recorded section as rows and lines."""
    evaluate, drift, ab = results.get("evaluate"), results.get("drift"), results.get("ab")
    others = [
        [stage, ", ".join(f"{k}={_fmt(v)}" for k, v in payload.items() if not isinstance(v, dict | list))]
        for stage, payload in results.items()
        if stage not in KNOWN
    ]
    return {
        "name": project.settings.project.name,
        "verdict": _verdict(results),
        "run_id": _run_id(results),
        "results": results,
        "evaluate": {
            "model": evaluate.get("model_type") or project.settings.model.type.value,
            "version": evaluate.get("version"),
            "metrics": metric_rows(evaluate),
            "gates": gate_rows(evaluate),
        }
        if evaluate
        else None,
        "drift": {
            "dataset_drift": bool(drift.get("dataset_drift")),
            "share": _fmt(drift.get("drift_share")),
            "rows": drift_rows(drift),
        }
        if drift
        else None,
        "ab": {"lines": _ab_lines(ab)} if ab else None,
        "others": others,
    }


def render_markdown(project: Project, results: dict[str, dict[str, Any]] | None = None) -> str:
    """The report as GitHub-flavoured Markdown (pull-request comment, job summary)."""
    results = load_stage_results(project) if results is None else results
    text = render_template(_TEMPLATES, "report.md", **_context(project, results))
    return text.rstrip("\n") + "\n"


# -- HTML plots -----------------------------------------------------------------------------
def _history_plot(project: Project, metric: str) -> str:
    records = load_history(project, "evaluate")
    values: list[float] = []
    labels: list[str] = []
    for record in records:
        value = _num((record["payload"].get("metrics") or {}).get(metric))
        if value is not None:
            values.append(value)
            stamp = datetime.fromtimestamp(float(record.get("recorded_at", 0)), tz=UTC)
            labels.append(stamp.strftime("%m-%d %H:%M"))
    if not values:
        return ""
    return trend_svg(f"{metric} over the last runs", labels[-30:], values[-30:], ylabel=metric)


def _shares(counts: list[Any]) -> list[float]:
    numbers = [_num(c) or 0.0 for c in counts]
    total = sum(numbers) or 1.0
    return [n / total for n in numbers]


def _drift_plots(drift: dict[str, Any]) -> list[str]:
    """The statistic of every column against its threshold, then each drifted column's histogram."""
    columns = {k: v for k, v in (drift.get("columns") or {}).items() if isinstance(v, dict)}
    plots = []
    stats = [(k, _num(v.get("statistic"))) for k, v in columns.items()]
    shown = [(k, s) for k, s in stats if s is not None]
    thresholds = {_num(v.get("threshold")) for v in columns.values()} - {None}
    threshold = thresholds.pop() if len(thresholds) == 1 else None
    if shown:
        plots.append(
            bars_svg(
                "drift statistic per column",
                [k for k, _ in shown],
                {"statistic": [s for _, s in shown]},
                threshold=threshold,
            )
        )
    for name, col in columns.items():
        hist = col.get("histogram")
        if col.get("drift") and isinstance(hist, dict):
            edges, reference, current = (list(hist.get(k) or []) for k in ("edges", "reference", "current"))
            bins = min(len(reference), len(current), max(len(edges) - 1, 0))
            if bins:
                plots.append(
                    distribution_svg(
                        f"{name}: reference vs current",
                        "numeric",
                        edges[: bins + 1],
                        _shares(reference[:bins]),
                        _shares(current[:bins]),
                    )
                )
    return plots


def _lift_plot(ab: dict[str, Any]) -> str:
    lift, ci = _num(ab.get("lift")), ab.get("ci") or []
    if lift is None or len(ci) != 2 or _num(ci[0]) is None or _num(ci[1]) is None:
        return ""
    return interval_svg("lift of the variant (95 % CI)", lift, float(ci[0]), float(ci[1]), name="lift")


def render_html(project: Project, results: dict[str, dict[str, Any]] | None = None) -> str:
    """The report as one self-contained HTML page with inline SVG plots."""
    results = load_stage_results(project) if results is None else results
    context = _context(project, results)
    evaluate, drift, ab = results.get("evaluate"), results.get("drift"), results.get("ab")
    primary = str((evaluate or {}).get("primary_metric") or project.settings.model.primary_metric)
    charts = {
        "history": _history_plot(project, primary) if evaluate else "",
        "drift": _drift_plots(drift) if drift else [],
        "lift": _lift_plot(ab) if ab else "",
    }
    return render_template(_TEMPLATES, "report.html", charts=charts, **context)
