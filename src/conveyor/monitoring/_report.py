"""The monitor report as JSON, Markdown and HTML with plots.

The plots are inline SVG drawn here by hand: matplotlib is not a dependency
of Conveyor (it would add ~40 MB for a few bar charts), and inline SVG keeps
the HTML one self-contained file that renders in a browser, a GitHub
artifact viewer or an e-mail, with no JavaScript and no network access.
"""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPORT_FILES = ("report.json", "report.md", "report.html")
_COLORS = ("#4C78A8", "#F58518", "#54A24B", "#B279A2")
_STATUS_MARK = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "insufficient_data": "⏳ insufficient data",
    "skipped": "➖ skipped",
}
_W, _H, _PAD_L, _PAD_B, _PAD_T = 640, 240, 48, 64, 28
_FONT = 'font-family="sans-serif"'


def bar_chart_svg(
    title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]], unit: str = ""
) -> str:
    """Grouped vertical bars: one group per label, one bar per series, a legend on top."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = max(values, default=0.0) or 1.0
    n_groups, n_series = max(len(labels), 1), max(len(series), 1)
    plot_w, plot_h = _W - _PAD_L - 8, _H - _PAD_B - _PAD_T
    group_w = plot_w / n_groups
    bar_w = max(1.0, group_w * 0.8 / n_series)
    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{esc(title)}">',
        f'<text x="{_PAD_L}" y="14" font-size="13" {_FONT} font-weight="bold">{esc(title)}</text>',
        f'<line x1="{_PAD_L}" y1="{_PAD_T + plot_h}" x2="{_W - 8}" y2="{_PAD_T + plot_h}" stroke="#888"/>',
        f'<text x="{_PAD_L - 4}" y="{_PAD_T + 4}" font-size="10" text-anchor="end" {_FONT}>'
        f"{top:.3g}{esc(unit)}</text>",
    ]
    for s, name in enumerate(series):
        lx = _PAD_L + 200 + 120 * s
        parts.append(f'<rect x="{lx}" y="4" width="10" height="10" fill="{_COLORS[s % len(_COLORS)]}"/>')
        parts.append(f'<text x="{lx + 14}" y="13" font-size="11" {_FONT}>{esc(name)}</text>')
    for g, label in enumerate(labels):
        x0 = _PAD_L + g * group_w + group_w * 0.1
        for s, vs in enumerate(series.values()):
            v = vs[g] if g < len(vs) else None
            if v is None:
                continue
            h = plot_h * float(v) / top
            parts.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{_PAD_T + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{_COLORS[s % len(_COLORS)]}">'
                f"<title>{esc(str(label))}: {float(v):.4g}{esc(unit)}</title></rect>"
            )
        cx = _PAD_L + g * group_w + group_w / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{_PAD_T + plot_h + 12}" font-size="9" {_FONT} '
            f'text-anchor="end" transform="rotate(-35 {cx:.1f} {_PAD_T + plot_h + 12})">'
            f"{esc(str(label)[:18])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _plots(report: dict[str, Any]) -> list[str]:
    svgs: list[str] = []
    for plot in report.get("plots", []):
        labels = plot["labels"]
        if plot.get("kind") == "numeric":  # bin edges → one label per bin
            labels = [f"{float(a):.3g}–{float(b):.3g}" for a, b in itertools.pairwise(labels)]
        svgs.append(bar_chart_svg(plot["title"], labels, plot["series"], plot.get("unit", "")))
    return svgs


def _rows_md(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append(
            "| " + " | ".join("-" if row.get(c) is None else str(row.get(c)) for c in columns) + " |"
        )
    return lines


_VERSION_COLUMNS = (
    "model_version",
    "variant",
    "requests",
    "error_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "served",
    "clicks",
    "ctr",
)


def render_markdown(report: dict[str, Any]) -> str:
    window = report["window"]
    lines = [
        f"# Conveyor monitor — {report['project']} / {report['env']}",
        "",
        f"**{'OK' if report['ok'] else 'DEGRADATION FOUND'}** · window {window['since'] or 'start of log'} → "
        f"{window['until']} · {report['counts']['requests']} requests, "
        f"{report['counts']['feedback']} feedback events",
        "",
        "## Checks",
        "",
        "| check | verdict | summary |",
        "|---|---|---|",
    ]
    lines += [f"| {c['name']} | {_STATUS_MARK[c['status']]} | {c['summary']} |" for c in report["checks"]]
    drifted = report.get("drifted_columns") or []
    if drifted:
        lines += ["", f"Drifted columns: **{', '.join(drifted)}**"]
    if report["versions"]:
        lines += ["", "## Versions", "", *_rows_md(report["versions"], _VERSION_COLUMNS)]
    for check in report["checks"]:
        cols = check["details"].get("columns")
        if isinstance(cols, dict) and cols:
            lines += [
                "",
                f"## {check['name']}",
                "",
                "| column | type | statistic | distance | p-value | drift |",
                "|---|---|---|---|---|---|",
            ]
            for name, col in cols.items():
                lines.append(
                    f"| {name} | {col.get('type', '')} | {col.get('test', '')} | "
                    f"{col.get('statistic', '')} | {col.get('p_value', '')} | "
                    f"{'yes' if col.get('drift') else 'no'} |"
                )
    alert = report.get("alert")
    if alert:
        lines += ["", "## Alert", ""] + [
            f"- {d['channel']} ({d['kind']}): {d['status']}" for d in alert["deliveries"]
        ]
    retrain = report.get("retrain")
    if retrain:
        lines += ["", "## Retraining", "", f"- status: {retrain['status']} (action {retrain['action']})"]
        lines += [f"- reason: {r}" for r in retrain["reasons"]]
        if retrain.get("detail"):
            lines.append(f"- {retrain['detail']}")
    return "\n".join(lines) + "\n"


def render_html(report: dict[str, Any], markdown: str) -> str:
    esc = html.escape
    checks = "".join(
        f"<tr class='{c['status']}'><td>{esc(c['name'])}</td><td>{esc(_STATUS_MARK[c['status']])}</td>"
        f"<td>{esc(c['summary'])}</td></tr>"
        for c in report["checks"]
    )
    versions = "".join(
        "<tr>"
        + "".join(f"<td>{esc('-' if v.get(c) is None else str(v.get(c)))}</td>" for c in _VERSION_COLUMNS)
        + "</tr>"
        for v in report["versions"]
    )
    head = "".join(f"<th>{c}</th>" for c in _VERSION_COLUMNS)
    plots = "".join(f"<figure>{svg}</figure>" for svg in _plots(report))
    status = "OK" if report["ok"] else "DEGRADATION FOUND"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Conveyor monitor — {esc(report['project'])} / {esc(report['env'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}.fail td{background:#fde2e2}.pass td{background:#e6f4ea}"
        "figure{margin:1em 0}</style></head><body>"
        f"<h1>Conveyor monitor — {esc(report['project'])} / {esc(report['env'])}</h1>"
        f"<p><b>{status}</b> · window {esc(str(report['window']['since']))} → "
        f"{esc(str(report['window']['until']))}"
        f" · {report['counts']['requests']} requests</p>"
        f"<h2>Checks</h2><table><tr><th>check</th><th>verdict</th><th>summary</th></tr>{checks}</table>"
        f"<h2>Versions</h2><table><tr>{head}</tr>{versions}</table>"
        f"<h2>Plots</h2>{plots or '<p>No data to plot.</p>'}"
        f"<h2>Full report</h2><pre>{esc(markdown)}</pre></body></html>\n"
    )


def write_reports(report: dict[str, Any], folder: Path) -> dict[str, str]:
    """Write report.json, report.md and report.html into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(report)
    (folder / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    (folder / "report.md").write_text(markdown, encoding="utf-8")
    (folder / "report.html").write_text(render_html(report, markdown), encoding="utf-8")
    return {name.split(".")[1]: str(folder / name) for name in REPORT_FILES}
