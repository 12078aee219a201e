"""Charts as inline SVG drawn by Matplotlib: offline, no script, one ``<svg>`` element each.

The operations page (``conveyor ui``) draws its charts with these; they are the
one plotting path issue 18 asks for (Matplotlib's Agg backend, text kept as text
so the page's fonts and screen readers see it). Matplotlib is imported on first
use only: a command that draws nothing does not pay for it.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import Any

_REFERENCE, _CURRENT, _THRESHOLD = "#1f5fa8", "#b35900", "#7a1c00"
_SIZE = (5.6, 2.6)


def _svg(fig: Any, label: str) -> str:
    """The figure as one ``<svg role="img" aria-label=…>`` element (no XML prologue)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    try:
        fig.tight_layout()
        fig.savefig(buf, format="svg")
    finally:
        plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, selectable, readable by tools
    plt.rcParams["svg.hashsalt"] = "conveyor"  # stable element ids: the same data, the same bytes
    return plt.subplots(figsize=_SIZE)


def distribution_svg(
    title: str, kind: str, labels: Sequence[Any], reference: Sequence[float], current: Sequence[float]
) -> str:
    """Reference against current shares: steps over bin edges (``kind == "numeric"``: ``labels``
    are ``len(reference) + 1`` edges) or side-by-side bars per category."""
    fig, ax = _figure()
    if kind == "numeric":
        edges = [float(x) for x in labels]
        ax.stairs(reference, edges, label="reference", color=_REFERENCE, linewidth=1.6)
        ax.stairs(current, edges, label="current", color=_CURRENT, linewidth=1.6, linestyle="--")
    else:
        xs = list(range(len(labels)))
        width = 0.4
        ax.bar([x - width / 2 for x in xs], reference, width, label="reference", color=_REFERENCE)
        ax.bar([x + width / 2 for x in xs], current, width, label="current", color=_CURRENT)
        ax.set_xticks(xs, [str(v) for v in labels], rotation=45, ha="right", fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("share of rows")
    ax.legend(fontsize=8)
    return _svg(fig, f"{title}: reference and current distributions")


def trend_svg(
    title: str,
    times: Sequence[str],
    values: Sequence[float | None],
    *,
    threshold: float | None = None,
    ylabel: str = "distance",
) -> str:
    """One value per run (``None``: not measured that run) with the threshold as a line."""
    fig, ax = _figure()
    xs = list(range(len(times)))
    ax.plot(
        xs,
        [float("nan") if v is None else v for v in values],
        marker="o",
        markersize=3,
        color=_REFERENCE,
        label=ylabel,
    )
    if threshold is not None:
        ax.axhline(threshold, color=_THRESHOLD, linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    step = max(1, len(xs) // 6)
    ax.set_xticks(xs[::step], [str(t)[:16] for t in times[::step]], rotation=30, ha="right", fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _svg(fig, f"{title}: {ylabel} over {len(xs)} runs")
