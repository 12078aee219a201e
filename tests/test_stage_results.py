"""Stage commands leave their results for `conveyor report` and the GitHub job summary."""

from __future__ import annotations

import json

from conveyor.cli._results import publish
from conveyor.project import Project
from conveyor.reports import load_stage_results


def test_evaluate_payload_is_reshaped_for_the_report(make_project, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project = Project.load(make_project("project:\n  name: shop\n"))
    payload = {
        "metrics": {"ndcg_at_10": 0.24},
        "baseline": {"name": "popularity", "metrics": {"ndcg_at_10": 0.05}},
        "production": {"version": "1", "metrics": {"ndcg_at_10": 0.2}},
        "primary_metric": "ndcg_at_10",
        "model_type": "als",
        "gates": [
            {"name": "beat_baseline", "verdict": "pass", "reason": "0.24 beats 0.05"},
            {"name": "no_regression", "verdict": "fail", "reason": "worse"},
        ],
    }
    publish(project, "evaluate", payload)
    stored = load_stage_results(project)["evaluate"]
    assert stored["production_metrics"] == {"ndcg_at_10": 0.2}
    assert stored["baseline_metrics"] == {"ndcg_at_10": 0.05}
    assert [g["passed"] for g in stored["gates"]] == [True, False]
    text = summary.read_text()
    assert text.startswith("#### conveyor evaluate")
    assert "no_regression" in text


def test_ab_conclusion_keeps_lift_interval_and_decision(make_project):
    project = Project.load(make_project("project:\n  name: shop\n"))
    payload = {
        "outcome": "kept-control",
        "reason": "no significant difference",
        "arms": {
            "control": {"ctr": 0.60, "users": 400, "impressions": 1600, "required_users": 1053},
            "variant": {"ctr": 0.61, "users": 45, "impressions": 185, "required_users": 117},
        },
        "decision": {"test": {"lift": 0.011, "lift_ci": [-0.1, 0.14], "p_value": 0.86}},
    }
    publish(project, "ab", payload)
    stored = load_stage_results(project)["ab"]
    assert stored["status"] == "concluded"
    assert stored["ci"] == [-0.1, 0.14]
    assert stored["required_n"] == 1053
    assert stored["unit"] == "users"
    assert stored["control"] == {"ctr": 0.60, "n": 400, "impressions": 1600}  # n counts users
    assert stored["decision"] == "kept-control"
    json.dumps(stored)


def test_outside_a_project_nothing_is_recorded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    publish(None, "drift", {"dataset_drift": False})
    assert list(tmp_path.iterdir()) == []
