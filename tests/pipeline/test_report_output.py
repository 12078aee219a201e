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
    assert "❌ 1 of 2 quality gates failed: latency_p95_ms (1 passed, 1 failed)" in md
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
        payload["headline"] == "shop: ❌ 1 of 2 quality gates failed: latency_p95_ms (1 passed, 1 failed); "
        "no dataset drift; A/B: promote variant"
    )
    assert "<svg" in out.read_text()
    assert "## Conveyor report — shop" in summary.read_text()


def test_cli_report_on_an_empty_project_says_what_to_do(make_project, cli):
    result = cli("--project", make_project(""), "report")
    assert result.exit_code == 0
    assert "No stage has recorded a result yet" in result.stdout


def test_cli_report_bad_format_is_exit_2(project, cli):
    assert cli("--project", project.root, "report", "--format", "pdf").exit_code == 2


def _gate(name: str, verdict: str) -> dict[str, object]:
    return {"name": name, "passed": verdict == "pass", "verdict": verdict, "reason": f"{name} {verdict}"}


def test_a_skipped_gate_is_counted_as_skipped_not_passed(make_project):
    proj = Project.load(make_project("project:\n  name: shop\n"))
    gates = [_gate(n, "pass") for n in ("evidence", "beat_baseline", "determinism", "latency")]
    record_stage_result(proj, "evaluate", {**EVALUATE, "gates": [*gates, _gate("no_regression", "skip")]})
    md = render_markdown(proj)
    assert "✅ quality gates: 4 passed, 1 skipped" in md
    assert "all 5 quality gates passed" not in md
    assert "| no_regression | ⏭️ skip | no_regression skip |" in md
    record_stage_result(
        proj, "evaluate", {**EVALUATE, "gates": [_gate("evidence", "inconclusive"), *gates[1:]]}
    )
    assert "❔ not enough evidence to decide the quality gates (3 passed, 1 inconclusive)" in render_markdown(
        proj
    )


def test_the_report_describes_one_pipeline_run(make_project):
    proj = Project.load(make_project("project:\n  name: shop\n"))
    record_stage_result(proj, "drift", DRIFT, pipeline_run="run-1")
    record_stage_result(proj, "train", {"run_id": "aaa", "model_type": "bpr"}, pipeline_run="run-1")
    record_stage_result(proj, "ab", AB, pipeline_run="run-1")
    record_stage_result(proj, "train", {"run_id": "bbb", "model_type": "als"}, pipeline_run="run-2")
    record_stage_result(proj, "evaluate", {**EVALUATE, "run_id": "bbb"}, pipeline_run="run-2")
    latest = load_stage_results(proj)
    assert sorted(latest) == ["evaluate", "train"]  # run-1's drift and A/B are another run's
    assert latest["train"]["model_type"] == "als"
    assert "Training run `bbb`." in render_markdown(proj, latest)
    assert sorted(load_stage_results(proj, "run-1")) == ["ab", "drift", "train"]
    with pytest.raises(UsageError, match="no stage recorded a result for pipeline run 'run-9'"):
        load_stage_results(proj, "run-9")


def test_stages_run_by_hand_show_only_the_evaluated_training_run(make_project):
    proj = Project.load(make_project("project:\n  name: shop\n"))
    record_stage_result(proj, "train", {"run_id": "bpr-run", "model_type": "bpr"})
    record_stage_result(proj, "register", {"run_id": "als-run", "version": 1})
    record_stage_result(proj, "evaluate", {**EVALUATE, "run_id": "bpr-run"})
    results = load_stage_results(proj)
    assert sorted(results) == ["evaluate", "train"]  # register was about another training run


def test_cli_report_of_a_named_pipeline_run(make_project, cli):
    root = make_project("project:\n  name: shop\n")
    proj = Project.load(root)
    record_stage_result(proj, "drift", DRIFT, pipeline_run="run-1")
    record_stage_result(proj, "evaluate", EVALUATE, pipeline_run="run-2")
    latest = cli("--project", root, "report", "--json").json()
    assert (latest["pipeline_run"], latest["stages"]) == ("run-2", ["evaluate"])
    first = cli("--project", root, "report", "--run", "run-1", "--json").json()
    assert (first["pipeline_run"], first["stages"]) == ("run-1", ["drift"])
    unknown = cli("--project", root, "report", "--run", "nope", "--json")
    assert unknown.exit_code == 2
    assert "no stage recorded a result for pipeline run 'nope'" in unknown.json()["error"]["message"]
