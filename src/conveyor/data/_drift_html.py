"""A self-contained HTML drift report: the table of every column, and for each
drifted column the reference and current distributions in one plot (inline SVG
drawn by Matplotlib, imported only when a report is written)."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from conveyor.data._drift_result import Distribution, DriftReport
from conveyor.errors import InputError

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.drift td { background: #fde2e1; }
.verdict { font-size: 1.2em; font-weight: bold; }
.plot { display: inline-block; margin: 0.5em; vertical-align: top; }
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _plot_svg(name: str, dist: Distribution) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    try:
        if dist.kind == "numeric":
            edges = dist.labels
            ax.stairs(dist.reference, edges, label="reference", fill=True, alpha=0.45)
            ax.stairs(dist.current, edges, label="current", fill=True, alpha=0.45)
        else:
            xs = range(len(dist.labels))
            width = 0.4
            ax.bar([x - width / 2 for x in xs], dist.reference, width, label="reference")
            ax.bar([x + width / 2 for x in xs], dist.current, width, label="current")
            ax.set_xticks(list(xs), [str(v) for v in dist.labels], rotation=45, ha="right", fontsize=7)
        ax.set_title(name)
        ax.set_ylabel("share of rows")
        ax.legend()
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
    finally:
        plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def render_drift_html(report: DriftReport, *, title: str = "Conveyor drift report") -> str:
    """The report as one HTML page."""
    verdict = "DATASET DRIFT" if report.dataset_drift else "no dataset drift"
    rows = []
    for name, col in report.columns.items():
        cls = ' class="drift"' if col.drift else ""
        rows.append(
            f"<tr{cls}><td>{html.escape(name)}</td><td>{col.type}</td><td>{col.test}</td>"
            f"<td>{_fmt(col.statistic)}</td><td>{_fmt(col.threshold)}</td>"
            f"<td>{_fmt(col.p_value)}</td><td>{_fmt(col.psi)}</td><td>{_fmt(col.drift)}</td></tr>"
        )
    skipped = "".join(
        f"<li>{html.escape(name)}: {html.escape(reason)}</li>" for name, reason in report.skipped.items()
    )
    plots = "".join(
        f'<div class="plot">{_plot_svg(name, report.distributions[name])}</div>'
        for name in report.drifted_columns
        if name in report.distributions
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="verdict">{verdict}: {len(report.drifted_columns)} of {len(report.columns)} columns drifted
(share {report.drift_share:.2f}, threshold {report.dataset_share_threshold:g}; method {report.method})</p>
<table><thead><tr><th>column</th><th>type</th><th>test</th><th>statistic</th><th>threshold</th>
<th>p-value</th><th>PSI</th><th>drift</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table>
{f"<h2>Not tested</h2><ul>{skipped}</ul>" if skipped else ""}
{"<h2>Drifted columns</h2>" + plots if plots else ""}
</body></html>
"""


def write_drift_html(report: DriftReport, path: Path | str) -> Path:
    """Write the HTML report to ``path``; InputError when it cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_drift_html(report), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the HTML report: {exc.strerror}", path=str(path)) from exc
    return path


__all__ = ["render_drift_html", "write_drift_html"]
