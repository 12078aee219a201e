"""The report: candidate against production, gates, drift, A/B — as Markdown or HTML.

The Markdown is made for a pull-request comment and the job summary (GitHub
tables, no HTML); the HTML adds the plots (metric history, drift histograms,
A/B lift with its interval) as inline SVG.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape
from typing import Any

from conveyor.project import Project
from conveyor.reports import _svg
from conveyor.reports._store import load_history, load_stage_results

KNOWN = ("evaluate", "drift", "ab")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: Any) -> str:
    number = _num(value)
    if number is None:
        return "–" if value is None else str(value)
    return f"{number:.4g}"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


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


def _run_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """Which training run the report is about (the run id ties train, evaluate and register)."""
    run_ids = {str(p["run_id"]) for p in results.values() if isinstance(p, dict) and p.get("run_id")}
    if len(run_ids) == 1:
        return [f"Training run `{run_ids.pop()}`.", ""]
    return []


def render_markdown(project: Project, results: dict[str, dict[str, Any]] | None = None) -> str:
    """The report as GitHub-flavoured Markdown (pull-request comment, job summary)."""
    results = load_stage_results(project) if results is None else results
    out = [f"## Conveyor report — {project.settings.project.name}", "", f"**{_verdict(results)}**", ""]
    out += _run_lines(results)
    if not results:
        out.append("No stage has recorded a result yet: run `conveyor run` (or the workflow) first.")
        return "\n".join(out) + "\n"
    evaluate = results.get("evaluate")
    if evaluate:
        model = evaluate.get("model_type") or project.settings.model.type.value
        version = evaluate.get("version")
        out += [f"### Candidate ({model}{f', version {version}' if version else ''}) against production", ""]
        out += [_table(["metric", "candidate", "production", "Δ", "Δ %"], metric_rows(evaluate)), ""]
        gates = gate_rows(evaluate)
        if gates:
            out += ["### Quality gates", "", _table(["gate", "verdict", "reason"], gates), ""]
    drift = results.get("drift")
    if drift:
        share = _fmt(drift.get("drift_share"))
        verdict = "**dataset drift**" if drift.get("dataset_drift") else "no dataset drift"
        out += ["### Data drift", "", f"{verdict} — share of drifted columns {share}", ""]
        header = ["column", "type", "test", "statistic", "threshold", "p-value", "verdict"]
        out += [_table(header, drift_rows(drift)), ""]
    ab = results.get("ab")
    if ab:
        out += ["### A/B test", "", *_ab_lines(ab), ""]
    others = {k: v for k, v in results.items() if k not in KNOWN}
    if others:
        rows = [
            [stage, ", ".join(f"{k}={_fmt(v)}" for k, v in payload.items() if not isinstance(v, dict | list))]
            for stage, payload in others.items()
        ]
        out += ["### Other stages", "", _table(["stage", "result"], rows), ""]
    return "\n".join(out)


# -- HTML -------------------------------------------------------------------------------
def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _history_plot(project: Project, metric: str) -> str:
    records = load_history(project, "evaluate")
    values: list[float] = []
    labels: list[str] = []
    for record in records:
        value = _num((record["payload"].get("metrics") or {}).get(metric))
        if value is not None:
            values.append(value)
            stamp = datetime.fromtimestamp(float(record.get("recorded_at", 0)), tz=UTC)
            labels.append(stamp.strftime("%m-%d"))
    return _svg.line_chart(f"{metric} over the last runs", labels[-30:], values[-30:]) if values else ""


def _drift_plots(drift: dict[str, Any]) -> list[str]:
    columns = {k: v for k, v in (drift.get("columns") or {}).items() if isinstance(v, dict)}
    plots = []
    for name, col in columns.items():
        hist = col.get("histogram")
        if col.get("drift") and isinstance(hist, dict):
            plots.append(
                _svg.histogram_pair(
                    f"{name}: reference vs current",
                    hist.get("edges") or [],
                    hist.get("reference") or [],
                    hist.get("current") or [],
                )
            )
    stats = [(k, _num(v.get("statistic"))) for k, v in columns.items()]
    shown = [(k, s) for k, s in stats if s is not None]
    thresholds = {_num(v.get("threshold")) for v in columns.values()} - {None}
    threshold = thresholds.pop() if len(thresholds) == 1 else None
    if shown:
        plots.insert(
            0,
            _svg.bar_chart(
                "drift statistic per column", [k for k, _ in shown], [s for _, s in shown], threshold
            ),
        )
    return plots


def render_html(project: Project, results: dict[str, dict[str, Any]] | None = None) -> str:
    """The report as one self-contained HTML page with inline SVG plots."""
    results = load_stage_results(project) if results is None else results
    name = escape(project.settings.project.name)
    parts = [f"<h1>Conveyor report — {name}</h1>", f"<p><strong>{escape(_verdict(results))}</strong></p>"]
    evaluate = results.get("evaluate")
    if evaluate:
        header = ["metric", "candidate", "production", "Δ", "Δ %"]
        parts += ["<h2>Candidate against production</h2>", _html_table(header, metric_rows(evaluate))]
        primary = str(evaluate.get("primary_metric") or project.settings.model.primary_metric)
        parts.append(_history_plot(project, primary))
        gates = gate_rows(evaluate)
        if gates:
            parts += ["<h2>Quality gates</h2>", _html_table(["gate", "verdict", "reason"], gates)]
    drift = results.get("drift")
    if drift:
        verdict = "dataset drift" if drift.get("dataset_drift") else "no dataset drift"
        parts += [f"<h2>Data drift</h2><p>{verdict}, share {_fmt(drift.get('drift_share'))}</p>"]
        header = ["column", "type", "test", "statistic", "threshold", "p-value", "verdict"]
        parts += [_html_table(header, drift_rows(drift)), *_drift_plots(drift)]
    ab = results.get("ab")
    if ab:
        parts += ["<h2>A/B test</h2><ul>"]
        parts += [f"<li>{escape(line.removeprefix('- '))}</li>" for line in _ab_lines(ab)]
        parts.append("</ul>")
        lift, ci = _num(ab.get("lift")), ab.get("ci") or []
        if lift is not None and len(ci) == 2 and _num(ci[0]) is not None and _num(ci[1]) is not None:
            parts.append(
                _svg.interval_plot("lift of the variant (95 % CI)", lift, float(ci[0]), float(ci[1]))
            )
    if not results:
        parts.append("<p>No stage has recorded a result yet: run <code>conveyor run</code> first.</p>")
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em}"
        "th{background:#f4f4f4}svg{display:block;margin:1em 0}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Conveyor report — {name}</title>'
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
    )
