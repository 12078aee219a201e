"""The monitor report: its Markdown exactly as a comment shows it; its HTML escaped, one chart per plot."""

from __future__ import annotations

import json
import math
import re

import polars as pl
import pytest

from conveyor.config import DriftSection
from conveyor.data import build_profile
from conveyor.monitoring._checks import drift_check
from conveyor.monitoring._report import render_html, render_markdown, write_reports

CHECKS = [
    {"name": "input_drift", "status": "fail", "summary": "2 of 3 columns drifted", "details": {"columns": {
        "price": {"type": "numeric", "test": "ks", "statistic": 0.3, "p_value": 0.001, "drift": True},
        "cat": {"type": "categorical", "test": "chi2", "statistic": 0.01, "drift": False}}}},
    {"name": "latency", "status": "pass", "summary": "p95 12 ms", "details": {}},
    {"name": "ctr", "status": "insufficient_data", "summary": "few", "details": {"columns": {}}},
    {"name": "accuracy", "status": "skipped", "summary": "no labels", "details": {"columns": "x"}},
]  # fmt: skip
REPORT = {
    "project": "shop", "env": "production", "ok": False,
    "window": {"since": None, "until": "2026-11-30T00:00:00"}, "counts": {"requests": 120, "feedback": 7},
    "checks": CHECKS, "drifted_columns": ["price", "qty"],
    "versions": [{"model_version": "3", "variant": "main", "requests": 100, "error_rate": 0.0, "p50_ms": 1.5,
                  "p95_ms": 3.25, "p99_ms": None, "served": 90, "clicks": 4, "ctr": 0.044},
                 {"model_version": "4", "variant": "canary", "requests": 20}],
    "alert": {"deliveries": [{"channel": "slack", "kind": "slack", "status": "sent"}]},
    "retrain": {"status": "dispatched", "action": "github", "reasons": ["drift", "age"], "detail": "run 5"},
    "plots": [
        {"title": "input_drift: price (drifted)", "kind": "numeric", "labels": ["0", "1.5", "3", "inf"],
         "series": {"reference": [0.2, 0.5, 0.3], "current": [0.6, 0.3, 0.1]}},
        {"title": "input_drift: <cat>", "kind": "categorical", "labels": ["a", "b"],
         "series": {"reference": [0.5, 0.5], "current": [0.4, 0.6]}},
        {"title": "latency by version (ms)", "kind": "categorical", "labels": ["v3 main", "v4 canary"],
         "unit": " ms", "series": {"p50": [1.5, 2.0], "p95": [3.25, None], "p99": [None, 9.0]}},
    ],
}  # fmt: skip
MARKDOWN = """\
# Conveyor monitor — shop / production

**DEGRADATION FOUND** · window start of log → 2026-11-30T00:00:00 · 120 requests, 7 feedback events

## Checks

| check | verdict | summary |
|---|---|---|
| input_drift | ❌ fail | 2 of 3 columns drifted |
| latency | ✅ pass | p95 12 ms |
| ctr | ⏳ insufficient data | few |
| accuracy | ➖ skipped | no labels |

Drifted columns: **price, qty**

## Versions

| model_version | variant | requests | error_rate | p50_ms | p95_ms | p99_ms | served | clicks | ctr |
|---|---|---|---|---|---|---|---|---|---|
| 3 | main | 100 | 0.0 | 1.5 | 3.25 | - | 90 | 4 | 0.044 |
| 4 | canary | 20 | - | - | - | - | - | - | - |

## input_drift

| column | type | test | statistic | threshold | p-value | drift |
|---|---|---|---|---|---|---|
| price | numeric | ks | 0.3 | - | 0.001 | yes |
| cat | categorical | chi2 | 0.01 | - | - | no |

## Alert

- slack (slack): sent

## Retraining

- status: dispatched (action github)
- reason: drift
- reason: age
- run 5
"""


def test_the_markdown_is_exactly_what_a_pull_request_comment_shows():
    assert render_markdown(REPORT) == MARKDOWN


def test_a_quiet_run_has_only_its_checks():
    quiet = {"project": "shop", "env": "staging", "ok": True, "window": {"since": "a", "until": "b"},
             "counts": {"requests": 0, "feedback": 0}, "checks": [], "versions": []}  # fmt: skip
    assert render_markdown(quiet) == (
        "# Conveyor monitor — shop / staging\n\n**OK** · window a → b · 0 requests, 0 feedback events\n\n"
        "## Checks\n\n| check | verdict | summary |\n|---|---|---|\n"
    )


def test_the_html_has_one_chart_per_plot_and_escapes_what_it_shows():
    html = render_html(REPORT, render_markdown(REPORT))
    assert html.count("<figure><svg") == 3
    assert "input_drift: price (drifted)" in html
    assert "input_drift: <cat>" not in html
    assert "input_drift: &lt;cat&gt;" in html
    assert '<tr class="fail"><td>input_drift</td><td>❌ fail</td><td>2 of 3 columns drifted</td></tr>' in html
    cells = re.findall(r"<td>([^<]*)</td>", html.split("<h2>Versions</h2>")[1].split("</table>")[0])
    assert cells == ["3", "main", "100", "0.0", "1.5", "3.25", "-", "90", "4", "0.044", "4", "canary", "20",
                     *["-"] * 7]  # fmt: skip
    assert "<pre># Conveyor monitor — shop / production" in html


def test_write_reports_writes_the_three_files(tmp_path):
    files = write_reports(REPORT, tmp_path / "run")
    assert sorted(files) == ["html", "json", "md"]
    assert json.loads((tmp_path / "run" / "report.json").read_text())["drifted_columns"] == ["price", "qty"]
    assert (tmp_path / "run" / "report.md").read_text() == MARKDOWN


def _table(markdown: str, section: str) -> list[dict[str, str]]:
    """The rows of the table under ``## section``, each cell keyed by its column's header."""
    lines = markdown.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0].strip().splitlines()
    header, _, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_each_drift_header_sits_over_its_own_value():
    """Known answer: a category that is all "a" in the reference and all "b" now is as far apart as
    the Jensen-Shannon distance goes (sqrt(ln 2) = 0.8326, natural log), and drifted; an unchanged
    numeric column is at Wasserstein distance 0 with p-value 1."""
    reference = pl.DataFrame({"segment": ["a"] * 200, "amount": [float(i) for i in range(200)]})
    current = reference.with_columns(pl.lit("b").alias("segment"))
    check, _ = drift_check("input_drift", build_profile(reference), current, DriftSection(), 50)
    report = {**REPORT, "checks": [check.to_dict()], "drifted_columns": ["segment"]}
    rows = {row["column"]: row for row in _table(render_markdown(report), "input_drift")}
    assert rows["segment"]["type"] == "categorical"
    assert rows["segment"]["test"] == "jensen_shannon"
    assert float(rows["segment"]["statistic"]) == pytest.approx(math.sqrt(math.log(2)), abs=1e-4)
    assert float(rows["segment"]["threshold"]) == DriftSection().categorical_threshold
    assert float(rows["segment"]["p-value"]) < 1e-10
    assert rows["segment"]["drift"] == "yes"
    assert rows["amount"] == {"column": "amount", "type": "numeric", "test": "wasserstein", "statistic": "0",
                              "threshold": "0.1", "p-value": "1", "drift": "no"}  # fmt: skip
