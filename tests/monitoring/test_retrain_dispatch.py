"""GitHub workflow dispatch and the retraining policy, against a real local receiver."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.config import RetrainPolicy
from conveyor.errors import ConfigError, ServiceError
from conveyor.monitoring import (
    PolicySignals,
    apply_policy,
    dispatch_workflow,
    local_commands,
    retrain_reasons,
)
from conveyor.pipeline import generate_workflows
from conveyor.pipeline._workflows import WEEKLY
from conveyor.project import Project

pytestmark = pytest.mark.xdist_group("monitoring-receiver")

TOKEN = "ghp_TestTokenNeverShown123"
PATH = "/repos/acme/shop/actions/workflows/weekly-retrain.yml/dispatches"


def _github_project(make_project, receiver, monkeypatch, *, action: str = "github", cooldown: float = 24):
    monkeypatch.setenv("TEST_GH_TOKEN", TOKEN)
    root = make_project(
        "alerts:\n  retries: 1\nmonitoring:\n  retrain:\n"
        f"    action: {action}\n    cooldown_hours: {cooldown}\n"
        "    github:\n      repository: acme/shop\n      token_env: TEST_GH_TOKEN\n"
        f"      api_url: {receiver.url('')}\n      ref: main\n"
    )
    return Project.load(root)


def test_dispatch_posts_the_documented_request(make_project, receiver, monkeypatch):
    project = _github_project(make_project, receiver, monkeypatch)
    result = dispatch_workflow(project, {"reason": "dataset drift (category)"})
    [request] = receiver.requests
    assert request.path == PATH
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.json() == {"ref": "main", "inputs": {"reason": "dataset drift (category)"}}
    assert (result.http_status, result.repository, result.workflow) == (
        204,
        "acme/shop",
        "weekly-retrain.yml",
    )


def test_a_refused_dispatch_raises_without_the_token(make_project, receiver, monkeypatch):
    project = _github_project(make_project, receiver, monkeypatch)
    receiver.plan(401)
    with pytest.raises(ServiceError, match="HTTP 401") as info:
        dispatch_workflow(project, {})
    assert TOKEN not in str(info.value)
    assert TOKEN not in json.dumps(info.value.to_dict())
    assert len(receiver.requests) == 1  # a 4xx is not retried


def test_dispatch_needs_a_repository(make_project, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    project = Project.load(make_project("monitoring:\n  retrain:\n    action: github\n"))
    with pytest.raises(ConfigError, match=r"monitoring\.retrain\.github\.repository"):
        dispatch_workflow(project, {})


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        (PolicySignals(), []),
        (
            PolicySignals(dataset_drift=True, drifted_columns=("category", "price")),
            ["dataset drift (category, price)"],
        ),
        (PolicySignals(metric="ctr", metric_drop_pct=9.9), []),
        (PolicySignals(metric="ctr", metric_drop_pct=25.0), ["ctr dropped 25.0 % (> 10 %)"]),
        (PolicySignals(model_version="3", model_age_days=8.0), ["model 3 is 8.0 days old (> 7)"]),
        (PolicySignals(model_age_days=6.9), []),
    ],
)
def test_retrain_reasons(signals, expected):
    assert retrain_reasons(RetrainPolicy(), signals) == expected


def test_drift_off_in_the_policy_does_not_trigger():
    policy = RetrainPolicy(on_dataset_drift=False)
    assert retrain_reasons(policy, PolicySignals(dataset_drift=True)) == []


def test_policy_dispatches_once_then_waits_out_the_cooldown(make_project, receiver, monkeypatch):
    project = _github_project(make_project, receiver, monkeypatch)
    drift = PolicySignals(dataset_drift=True, drifted_columns=("category",))
    now = datetime(2025, 1, 6, 6, tzinfo=UTC)
    first = apply_policy(project, drift, now=now)
    second = apply_policy(project, drift, now=now + timedelta(hours=6))
    later = apply_policy(project, drift, now=now + timedelta(hours=25))
    assert (first.status, second.status, later.status) == ("dispatched", "cooldown", "dispatched")
    assert [r.json()["inputs"]["reason"] for r in receiver.requests] == ["dataset drift (category)"] * 2
    # what was really sent is declared by the generated weekly-retrain.yml (else GitHub answers 422)
    declared = generate_workflows(project.settings)[WEEKLY]["on"]["workflow_dispatch"]["inputs"]
    assert set(receiver.requests[0].json()["inputs"]) <= set(declared)
    assert apply_policy(project, PolicySignals(), now=now).status == "not-needed"


def test_a_failed_dispatch_is_reported_and_does_not_start_the_cooldown(make_project, receiver, monkeypatch):
    project = _github_project(make_project, receiver, monkeypatch)
    receiver.plan(500, times=2)
    drift = PolicySignals(dataset_drift=True)
    failed = apply_policy(project, drift)
    retried = apply_policy(project, drift)
    assert failed.status == "failed"
    assert "HTTP 500" in (failed.detail or "")
    assert retried.status == "dispatched"


def test_action_none_only_reports(make_project):
    project = Project.load(make_project("monitoring:\n  retrain:\n    action: none\n"))
    decision = apply_policy(project, PolicySignals(dataset_drift=True))
    assert (decision.status, decision.triggered) == ("disabled", True)


def test_local_action_runs_the_pipeline_with_the_command_line(make_project):
    project = Project.load(make_project("monitoring:\n  retrain:\n    action: local\n"))
    commands = local_commands(project)
    assert [name for name, _ in commands] == ["train", "evaluate", "register", "deploy-staging", "smoke"]
    assert commands[0][1] == [sys.executable, "-m", "conveyor", "--project", str(project.root), "train"]
    assert commands[3][1][-3:] == ["deploy", "--env", "staging"]
    # an empty project cannot train: the first stage fails, the rest is not run
    decision = apply_policy(project, PolicySignals(dataset_drift=True))
    assert decision.status == "failed"
    assert decision.stages == [{"stage": "train", "exit_code": 2}]
    assert "stage train exited 2" in (decision.detail or "")
