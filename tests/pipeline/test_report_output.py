"""The results store and the report: deltas, gates, drift, A/B, job summary, HTML plots."""

from __future__ import annotations

import pytest

from conveyor.errors import UsageError
from conveyor.project import Project
from conveyor.reports import (
    append_step_summary,
    load_history,
    load_stage_results,
    record_stage_result,
    render_html,
    render_markdown,
)

EVALUATE = {
    "metrics": {"ndcg_at_10": 0.30, "precision_at_10": 0.12},
    "production_metrics": {"ndcg_at_10": 0.25, "precision_at_10": 0.12},
    "primary_metric": "ndcg_at_10",
    "model_type": "als",
    "version": 3,
    "gates": [
        {"name": "no_regression", "passed": True, "reason": "ndcg_at_10 0.30 >= 0.245"},
        {"name": "latency_p95_ms", "passed": False, "reason": "p95 140 ms > 100 ms"},
    ],
}
DRIFT = {
    "dataset_drift": False,
    "drift_share": 0.5,
    "columns": {
        "price": {
            "type": "numeric", "test": "wasserstein", "statistic": 0.31, "p_value": 1e-9, "threshold": 0.1,
            "drift": True, "histogram": {"edges": [0, 1, 2, 3], "reference": [5, 3, 2], "current": [1, 3, 6]},
        },
        "category": {
            "type": "categorical", "test": "jensen-shannon", "statistic": 0.02, "p_value": 0.4,
            "threshold": 0.1, "drift": False,
        },
    },
}  # fmt: skip
AB = {
    "status": "concluded",
    "control": {"ctr": 0.050, "n": 9000},
    "variant": {"ctr": 0.060, "n": 1000},
    "lift": 0.2,
    "ci": [0.05, 0.35],
    "p_value": 0.01,
    "decision": "promote variant",
    "reason": "significant lift",
}


@pytest.fixture
def project(make_project):
    proj = Project.load(make_project("project:\n  name: shop\n"))
    record_stage_result(proj, "evaluate", EVALUATE)
    record_stage_result(proj, "drift", DRIFT)
    record_stage_result(proj, "ab", AB)
    record_stage_result(proj, "register", {"version": 3, "model_name": "shop"})
    return proj


def test_store_keeps_the_latest_result_and_the_history(project):
    record_stage_result(project, "evaluate", {**EVALUATE, "metrics": {"ndcg_at_10": 0.31}})
    assert load_stage_results(project)["evaluate"]["metrics"] == {"ndcg_at_10": 0.31}
    assert [r["payload"]["metrics"]["ndcg_at_10"] for r in load_history(project, "evaluate")] == [0.30, 0.31]


@pytest.mark.parametrize(
    ("stage", "payload", "message"),
    [
        ("../x", {}, "stage name"),
        ("Train", {}, "stage name"),
        ("train", {"x": float("nan")}, "not JSON-ready"),
    ],
)
def test_store_refuses_bad_records(project, stage, payload, message):
    with pytest.raises(UsageError, match=message):
        record_stage_result(project, stage, payload)


def test_markdown_has_deltas_gates_drift_and_ab(project):
    md = render_markdown(project)
    assert "| ndcg_at_10 | 0.3 | 0.25 | +0.05 | +20.0% |" in md
    assert "| precision_at_10 | 0.12 | 0.12 | +0 | +0.0% |" in md
    assert "❌ 1 of 2 quality gates failed" in md
    assert "| latency_p95_ms | ❌ fail | p95 140 ms > 100 ms |" in md
    assert "| price | numeric | wasserstein | 0.31 | 0.1 | 1e-09 | ⚠️ drift |" in md
    assert "lift: +20.0% (95 % CI +5.0% to +35.0%), p-value 0.01" in md
    assert "| register | version=3, model_name=shop |" in md
    assert "<" not in md  # plain Markdown: a pull-request comment renders it as is


def test_html_has_inline_svg_plots(project):
    html = render_html(project)
    assert html.startswith("<!doctype html>")
    assert html.count("<svg") == 4  # metric history, drift bars, one drifted histogram, A/B lift
    assert "price: reference vs current" in html
    assert "lift of the variant (95 % CI)" in html
    assert "ndcg_at_10 over the last runs" in html


def test_step_summary_is_appended_when_set(project, tmp_path, monkeypatch):
    target = tmp_path / "summary.md"
    target.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert append_step_summary("## part") is True
    assert target.read_text() == "# earlier step\n## part\n\n"
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    assert append_step_summary("## part") is False


def test_cli_report_writes_html_and_appends_the_summary(project, cli, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = tmp_path / "r.html"
    result = cli("--project", project.root, "report", "--format", "html", "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    payload = result.json()
    assert payload["step_summary"] is True
    assert (
        payload["headline"] == "shop: ❌ 1 of 2 quality gates failed; no dataset drift; A/B: promote variant"
    )
    assert "<svg" in out.read_text()
    assert "## Conveyor report — shop" in summary.read_text()


def test_cli_report_on_an_empty_project_says_what_to_do(make_project, cli):
    result = cli("--project", make_project(""), "report")
    assert result.exit_code == 0
    assert "No stage has recorded a result yet" in result.stdout


def test_cli_report_bad_format_is_exit_2(project, cli):
    assert cli("--project", project.root, "report", "--format", "pdf").exit_code == 2
