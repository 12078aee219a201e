"""A self-contained HTML drift report: the table of every column, and for each
drifted column the reference and current distributions in one plot (inline SVG
drawn by :mod:`conveyor.rendering`; the page's layout is ``templates/drift.html``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor.data._drift_result import DriftReport
from conveyor.errors import InputError
from conveyor.rendering import distribution_svg, render_template

_TEMPLATES = "conveyor.data"  # the package whose templates/ folder holds drift.html


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_drift_html(report: DriftReport, *, title: str = "Conveyor drift report") -> str:
    """The report as one HTML page."""
    plots = []
    for name in report.drifted_columns:
        dist = report.distributions.get(name)
        if dist is not None:
            plots.append(distribution_svg(name, dist.kind, dist.labels, dist.reference, dist.current))
    return render_template(_TEMPLATES, "drift.html", report=report, title=title, plots=plots, fmt=_fmt)


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
