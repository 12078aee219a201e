"""The one chart renderer: Matplotlib → one inline ``<svg>`` each, offline, the same bytes each time."""

from __future__ import annotations

import re
import threading

import pytest

from conveyor.rendering import bars_svg, distribution_svg, interval_svg, trend_svg


def _texts(svg: str) -> list[str]:
    """The text Matplotlib wrote as text (``svg.fonttype: none``): titles, ticks, legends."""
    return [t.strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def _one_svg(svg: str) -> None:
    assert svg.startswith('<svg role="img" aria-label="')
    assert svg.count("<svg") == 1
    assert svg.rstrip().endswith("</svg>")
    assert "<script" not in svg
    assert not re.search(r'(href|src)="(https?:|//)', svg)  # offline: nothing to fetch


def test_a_distribution_is_one_labelled_svg_with_both_series_and_every_category():
    svg = distribution_svg("city", "categorical", ["Lyon", "Nice", "Paris"], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1])
    _one_svg(svg)
    assert 'aria-label="city: reference and current distributions"' in svg
    texts = _texts(svg)
    for text in ("city", "Lyon", "Nice", "Paris", "reference", "current", "share of rows"):
        assert text in texts


def test_the_same_data_gives_the_same_bytes():
    args = ("price", "numeric", [0, 1, 2, 3], [0.5, 0.3, 0.2], [0.1, 0.3, 0.6])
    assert distribution_svg(*args) == distribution_svg(*args)
    assert "<dc:date>" not in distribution_svg(*args)


def test_an_open_numeric_bin_is_drawn_as_labelled_bars():
    svg = distribution_svg("age", "numeric", ["0", "10", "inf"], [0.5, 0.5], [0.2, 0.8])
    assert "10–inf" in _texts(svg)


def test_a_trend_marks_its_threshold_and_tolerates_missing_runs():
    svg = trend_svg("price: ks", ["2026-11-01", "2026-11-02", "2026-11-03"], [0.05, None, 0.4], threshold=0.2)
    _one_svg(svg)
    assert 'aria-label="price: ks: distance over 3 runs"' in svg
    assert "threshold 0.2" in _texts(svg)


def test_bars_name_every_group_and_series():
    svg = bars_svg(
        "latency by version (ms)", ["v3 main", "v4 canary"], {"p50": [1.5, 2.0], "p95": [3.0, None]}
    )
    _one_svg(svg)
    texts = _texts(svg)
    for text in ("latency by version (ms)", "v3 main", "v4 canary", "p50", "p95"):
        assert text in texts
    assert 'aria-label="latency by version (ms): p50, p95 for 2 groups"' in svg


def test_bars_over_the_threshold_are_marked():
    """Two of three columns at or over 0.1: two bars in the threshold's colour, one in the series'."""
    svg = bars_svg(
        "drift statistic per column", ["a", "b", "c"], {"statistic": [0.31, 0.02, 0.1]}, threshold=0.1
    )
    # the bars are the patches clipped to the axes (the legend's are not), in label order
    bars = re.findall(r'<path d="[^"]*" clip-path="url\(#\w+\)" style="fill: (#[0-9a-f]{6})"', svg)
    assert bars == ["#7a1c00", "#1f5fa8", "#7a1c00"]
    assert "at or over the threshold" in _texts(svg)
    assert "threshold 0.1" in _texts(svg)


def test_an_interval_shows_its_bounds_and_estimate_as_percentages():
    svg = interval_svg("lift of the variant (95 % CI)", 0.2, 0.05, 0.35, name="lift")
    _one_svg(svg)
    texts = _texts(svg)
    for text in ("+5.0%", "+35.0%", "lift +20.0%", "lift of the variant (95 % CI)"):
        assert text in texts


def test_text_is_escaped_in_the_svg():
    svg = distribution_svg("<b>x</b> & y", "categorical", ["<i>"], [1.0], [1.0])
    assert "<b>" not in svg
    assert "<i>" not in svg
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in svg


def test_threads_draw_at_the_same_time():
    """No pyplot: each chart is its own figure, so the operations page's threads cannot mix them."""
    results: dict[int, str] = {}

    def draw(i: int) -> None:
        results[i] = trend_svg(f"series {i}", ["a", "b"], [float(i), float(i + 1)])

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [0, 1, 2, 3]
    for i, svg in results.items():
        assert f"series {i}" in _texts(svg)
        assert svg == trend_svg(f"series {i}", ["a", "b"], [float(i), float(i + 1)])


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_an_empty_distribution_still_renders(kind):
    svg = distribution_svg("empty", kind, ["0"] if kind == "numeric" else [], [], [])
    _one_svg(svg)
    assert "empty" in _texts(svg)  # the chart still names its column
