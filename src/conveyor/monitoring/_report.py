"""The monitor report as JSON, Markdown and HTML with plots.

The layout is in ``templates/monitor.md`` and ``templates/monitor.html``
(Jinja2; the HTML one escapes every value); the plots are inline SVG drawn by
:mod:`conveyor.rendering` (Matplotlib), so the HTML stays one self-contained
file that renders in a browser, a GitHub artifact viewer or an e-mail, with no
JavaScript and no network access.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conveyor.rendering import bars_svg, distribution_svg, render_template

REPORT_FILES = ("report.json", "report.md", "report.html")
_TEMPLATES = "conveyor.monitoring"  # the package whose templates/ folder holds monitor.md and monitor.html
_STATUS_MARK = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "insufficient_data": "⏳ insufficient data",
    "skipped": "➖ skipped",
}
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
_DISTRIBUTION = {"reference", "current"}


def _plots(report: dict[str, Any]) -> list[str]:
    """A drift check's distributions (reference against current), the per-version bars."""
    svgs: list[str] = []
    for plot in report.get("plots", []):
        series = plot["series"]
        if set(series) == _DISTRIBUTION:
            kind = "numeric" if plot.get("kind") == "numeric" else "categorical"
            svgs.append(
                distribution_svg(plot["title"], kind, plot["labels"], series["reference"], series["current"])
            )
        else:
            svgs.append(bars_svg(plot["title"], plot["labels"], series, unit=plot.get("unit", "")))
    return svgs


def _context(report: dict[str, Any]) -> dict[str, Any]:
    return {"report": report, "marks": _STATUS_MARK, "version_columns": _VERSION_COLUMNS}


def render_markdown(report: dict[str, Any]) -> str:
    return render_template(_TEMPLATES, "monitor.md", **_context(report))


def render_html(report: dict[str, Any], markdown: str) -> str:
    context = _context(report)
    return render_template(_TEMPLATES, "monitor.html", plots=_plots(report), markdown=markdown, **context)


def write_reports(report: dict[str, Any], folder: Path) -> dict[str, str]:
    """Write report.json, report.md and report.html into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(report)
    (folder / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    (folder / "report.md").write_text(markdown, encoding="utf-8")
    (folder / "report.html").write_text(render_html(report, markdown), encoding="utf-8")
    return {name.split(".")[1]: str(folder / name) for name in REPORT_FILES}
