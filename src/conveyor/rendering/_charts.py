"""Charts as inline SVG drawn by Matplotlib: offline, no script, one ``<svg>`` element each.

The one plotting path of Conveyor (issue 18): the pipeline report, the monitor
report, the drift report and the operations page all draw here. Matplotlib is a
well-kept library that already handles axes, ticks, legends and text escaping, so
no chart is drawn by hand. Each chart is its own :class:`matplotlib.figure.Figure`
(no ``pyplot``: no global figure list, so the operations page's worker threads
can draw at the same time), saved as SVG with text kept as text (the page's
fonts and screen readers see it) and no date in the metadata, so the same data
gives the same bytes. Matplotlib is imported on first use only: a command that
draws nothing does not pay for it.
"""

from __future__ import annotations

import functools
import html
import io
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

_REFERENCE, _CURRENT, _THRESHOLD, _MUTED = "#1f5fa8", "#b35900", "#7a1c00", "#6b6b6b"
_SERIES = (_REFERENCE, _CURRENT, "#2e7d32", "#7b3f98")
_SIZE = (5.6, 2.6)
# no RDF block: no date (the same data, the same bytes) and nothing a page does not show
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


@functools.cache
def _matplotlib() -> Any:
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, selectable, readable by tools
    matplotlib.rcParams["svg.hashsalt"] = "conveyor"  # stable element ids: the same data, the same bytes
    return matplotlib


def _figure() -> tuple[Any, Any]:
    _matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE)
    return fig, fig.subplots()


def _svg(fig: Any, label: str) -> str:
    """The figure as one ``<svg role="img" aria-label=…>`` element (no XML prologue)."""
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg", metadata=_NO_METADATA)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)


def _number(value: float | None) -> float:
    return float("nan") if value is None or not math.isfinite(value) else float(value)


def distribution_svg(
    title: str, kind: str, labels: Sequence[Any], reference: Sequence[float], current: Sequence[float]
) -> str:
    """Reference against current shares: steps over bin edges (``kind == "numeric"``: ``labels``
    are ``len(reference) + 1`` edges) or side-by-side bars per category."""
    edges = [float(x) for x in labels] if kind == "numeric" else []
    if kind == "numeric" and not all(math.isfinite(e) for e in edges):  # an open bin: no width to draw
        kind, labels = "categorical", [f"{a:.3g}–{b:.3g}" for a, b in itertools.pairwise(edges)]
    fig, ax = _figure()
    if kind == "numeric":
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
    ax.plot(xs, [_number(v) for v in values], marker="o", markersize=3, color=_REFERENCE, label=ylabel)
    if threshold is not None:
        ax.axhline(threshold, color=_THRESHOLD, linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    step = max(1, len(xs) // 6)
    ax.set_xticks(xs[::step], [str(t)[:16] for t in times[::step]], rotation=30, ha="right", fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _svg(fig, f"{title}: {ylabel} over {len(xs)} runs")


def bars_svg(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    threshold: float | None = None,
    unit: str = "",
) -> str:
    """Grouped bars: one group per label, one bar per series (``None``: no bar), a legend when
    there are several series; ``threshold`` as a dashed line, the bars at or over it marked."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, ax = _figure()
    xs = list(range(len(labels)))
    n = max(len(series), 1)
    width = 0.8 / n
    handles: list[Any] = []
    for s, (name, values) in enumerate(series.items()):
        heights = [_number(v) for v in values[: len(xs)]]
        colour = _SERIES[s % len(_SERIES)]
        colours = [
            _THRESHOLD if threshold is not None and math.isfinite(h) and h >= threshold else colour
            for h in heights
        ]
        offset = (s - (n - 1) / 2) * width
        ax.bar([x + offset for x in xs[: len(heights)]], heights, width, color=colours)
        handles.append(Patch(color=colour, label=name))
    if threshold is not None:
        ax.axhline(threshold, color=_THRESHOLD, linestyle="--", linewidth=1)
        handles.append(Patch(color=_THRESHOLD, label="at or over the threshold"))
        handles.append(Line2D([], [], color=_THRESHOLD, linestyle="--", label=f"threshold {threshold:g}"))
    ax.set_xticks(xs, [str(v)[:18] for v in labels], rotation=35, ha="right", fontsize=7)
    ax.set_title(title, fontsize=10)
    if unit.strip():
        ax.set_ylabel(unit.strip())
    if len(series) > 1 or threshold is not None:
        ax.legend(handles=handles, fontsize=8)
    return _svg(fig, f"{title}: {', '.join(series)} for {len(xs)} {'group' if len(xs) == 1 else 'groups'}")


def interval_svg(title: str, estimate: float, low: float, high: float, *, name: str = "estimate") -> str:
    """``name``'s estimate with its confidence interval (as percentages) against the zero line."""
    fig, ax = _figure()
    colour = _REFERENCE if low > 0 or high < 0 else _MUTED  # the interval excludes zero: a decision
    ax.axvline(0.0, color=_MUTED, linestyle="--", linewidth=1)
    ax.errorbar(
        [estimate], [0], xerr=[[estimate - low], [high - estimate]], fmt="o", color=colour, capsize=6, lw=3
    )
    ax.set_yticks([])
    ax.set_ylim(-1, 1)
    ax.xaxis.set_major_formatter(_percent())
    for x, text in ((low, f"{low:+.1%}"), (high, f"{high:+.1%}")):
        ax.annotate(text, (x, 0), textcoords="offset points", xytext=(0, 10), ha="center", fontsize=8)
    ax.annotate(
        f"{name} {estimate:+.1%}", (estimate, 0), textcoords="offset points", xytext=(0, -18), ha="center"
    )
    ax.set_title(title, fontsize=10)
    return _svg(fig, f"{title}: {estimate:+.1%}, from {low:+.1%} to {high:+.1%}")


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)
