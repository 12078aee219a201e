"""Small inline SVG charts for the HTML report.

Hand-written on purpose: matplotlib is not a dependency (it would add tens of
megabytes and a second plotting stack for three simple charts), and inline
SVG keeps the HTML report one self-contained file that opens anywhere, with
no JavaScript and nothing fetched from the network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH = 520
HEIGHT = 200
PAD_L, PAD_R, PAD_T, PAD_B = 52, 12, 26, 30
REF_COLOUR = "#4c72b0"
CUR_COLOUR = "#dd8452"
BAD_COLOUR = "#c44e52"


def _frame(title: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="11">'
        f'<text x="{PAD_L}" y="15" font-size="12" font-weight="bold">{escape(title)}</text>'
        f"{body}</svg>"
    )


def _scale(lo: float, hi: float, a: float, b: float) -> tuple[float, float]:
    """Linear map [lo, hi] → [a, b] as (slope, offset)."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi == lo:
        lo, hi = (lo - 1, hi + 1) if math.isfinite(lo) else (0.0, 1.0)
    slope = (b - a) / (hi - lo)
    return slope, a - slope * lo


def _axes(y_lo: float, y_hi: float) -> str:
    x0, x1, y0, y1 = PAD_L, WIDTH - PAD_R, HEIGHT - PAD_B, PAD_T
    return (
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#888"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#888"/>'
        f'<text x="{x0 - 4}" y="{y0}" text-anchor="end">{y_lo:.3g}</text>'
        f'<text x="{x0 - 4}" y="{y1 + 8}" text-anchor="end">{y_hi:.3g}</text>'
    )


def line_chart(title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """A metric over successive runs."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return _frame(title, '<text x="60" y="100">no data</text>')
    lo, hi = min(finite), max(finite)
    sy, oy = _scale(lo, hi, HEIGHT - PAD_B, PAD_T)
    n = len(values)
    sx, ox = _scale(0, max(n - 1, 1), PAD_L + 8, WIDTH - PAD_R - 8)
    points = [(sx * i + ox, sy * v + oy) for i, v in enumerate(values) if math.isfinite(v)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{REF_COLOUR}"/>' for x, y in points)
    ticks = "".join(
        f'<text x="{sx * i + ox:.1f}" y="{HEIGHT - PAD_B + 14}" text-anchor="middle">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if n <= 12 or i % math.ceil(n / 12) == 0
    )
    body = _axes(lo, hi) + f'<polyline points="{path}" fill="none" stroke="{REF_COLOUR}"/>' + dots + ticks
    return _frame(title, body)


def histogram_pair(
    title: str, edges: Sequence[float], reference: Sequence[float], current: Sequence[float]
) -> str:
    """Reference and current distributions of one column on shared bins (as shares)."""
    bins = min(len(reference), len(current), max(len(edges) - 1, 0))
    if bins == 0:
        return _frame(title, '<text x="60" y="100">no histogram</text>')
    ref_total = sum(reference[:bins]) or 1.0
    cur_total = sum(current[:bins]) or 1.0
    ref = [r / ref_total for r in reference[:bins]]
    cur = [c / cur_total for c in current[:bins]]
    top = max(*ref, *cur, 1e-12)
    sy, oy = _scale(0.0, top, HEIGHT - PAD_B, PAD_T)
    width = (WIDTH - PAD_L - PAD_R) / bins
    bars = []
    for i in range(bins):
        x = PAD_L + i * width
        for share, colour, offset in ((ref[i], REF_COLOUR, 0.0), (cur[i], CUR_COLOUR, width / 2)):
            y = sy * share + oy
            bars.append(
                f'<rect x="{x + offset:.1f}" y="{y:.1f}" width="{max(width / 2 - 1, 1):.1f}" '
                f'height="{HEIGHT - PAD_B - y:.1f}" fill="{colour}" fill-opacity="0.8"/>'
            )
    labels = (
        f'<text x="{PAD_L}" y="{HEIGHT - 8}">{edges[0]:.3g}</text>'
        f'<text x="{WIDTH - PAD_R}" y="{HEIGHT - 8}" text-anchor="end">{edges[bins]:.3g}</text>'
        f'<text x="{WIDTH - PAD_R}" y="15" text-anchor="end" fill="{REF_COLOUR}">reference</text>'
        f'<text x="{WIDTH - PAD_R - 70}" y="15" text-anchor="end" fill="{CUR_COLOUR}">current</text>'
    )
    return _frame(title, _axes(0.0, top) + "".join(bars) + labels)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], threshold: float | None) -> str:
    """One bar per column (its drift statistic), the threshold as a dashed line."""
    if not values:
        return _frame(title, '<text x="60" y="100">no columns</text>')
    top = max(*values, threshold or 0.0, 1e-12)
    sy, oy = _scale(0.0, top, HEIGHT - PAD_B, PAD_T)
    width = (WIDTH - PAD_L - PAD_R) / len(values)
    parts = [_axes(0.0, top)]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = sy * value + oy
        colour = BAD_COLOUR if threshold is not None and value >= threshold else REF_COLOUR
        x = PAD_L + i * width
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{max(width - 4, 1):.1f}" '
            f'height="{HEIGHT - PAD_B - y:.1f}" fill="{colour}"/>'
            f'<text x="{x + width / 2:.1f}" y="{HEIGHT - PAD_B + 14}" text-anchor="middle">'
            f"{escape(label[:12])}</text>"
        )
    if threshold is not None:
        y = sy * threshold + oy
        parts.append(
            f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{WIDTH - PAD_R}" y2="{y:.1f}" '
            f'stroke="{BAD_COLOUR}" stroke-dasharray="4 3"/>'
        )
    return _frame(title, "".join(parts))


def interval_plot(title: str, estimate: float, low: float, high: float) -> str:
    """A lift with its confidence interval, against the zero line."""
    lo, hi = min(low, 0.0, estimate), max(high, 0.0, estimate)
    span = (hi - lo) or 1.0
    sx, ox = _scale(lo - 0.1 * span, hi + 0.1 * span, PAD_L, WIDTH - PAD_R)
    y = HEIGHT / 2
    zero = sx * 0.0 + ox
    colour = REF_COLOUR if low > 0 or high < 0 else "#888"
    body = (
        f'<line x1="{zero:.1f}" y1="{PAD_T}" x2="{zero:.1f}" y2="{HEIGHT - PAD_B}" stroke="#888" '
        'stroke-dasharray="3 3"/>'
        f'<text x="{zero:.1f}" y="{HEIGHT - PAD_B + 14}" text-anchor="middle">0</text>'
        f'<line x1="{sx * low + ox:.1f}" y1="{y}" x2="{sx * high + ox:.1f}" y2="{y}" stroke="{colour}" '
        'stroke-width="3"/>'
        f'<circle cx="{sx * estimate + ox:.1f}" cy="{y}" r="5" fill="{colour}"/>'
        f'<text x="{sx * low + ox:.1f}" y="{y - 10}" text-anchor="middle">{low:+.1%}</text>'
        f'<text x="{sx * high + ox:.1f}" y="{y - 10}" text-anchor="middle">{high:+.1%}</text>'
        f'<text x="{sx * estimate + ox:.1f}" y="{y + 20}" text-anchor="middle">lift {estimate:+.1%}</text>'
    )
    return _frame(title, body)
