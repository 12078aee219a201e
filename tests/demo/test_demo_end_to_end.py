"""A reduced demo, end to end, on real servers, the real registry and a real webhook receiver.

Known answers: every planted outcome must happen — the recommender beats the
popularity baseline at least twice over, the A/B test is decided on users,
the week-3 drift is detected and the alert is in the local receiver's log,
retraining registers a new version whose training data is the week-3 file
(by MD5), the canary promotes exactly that version, the broken feed is
stopped by validation while production keeps serving it. And the demo fails
when its story does not happen: a sabotaged run exits 1 naming the step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.config import Template
from conveyor.demo import Demo, DemoSummary, WebhookReceiver
from conveyor.demo._scenario import SABOTAGE_ENV
from conveyor.demo._steps import StepResult
from conveyor.demo._story import STORY
from conveyor.errors import UsageError
from conveyor.project import Project
from conveyor.registry import get_version

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]


@pytest.fixture(scope="session")
def summary(demo_summary):
    """The session's quick demo (tests/conftest.py), shared with the operations page's test."""
    return demo_summary


def _step(summary, phase, name):
    found = [s for s in summary.steps if s.phase == phase and s.name == name]
    assert found, f"no step {phase}/{name}: {[(s.phase, s.name) for s in summary.steps]}"
    return found[-1]


def test_every_step_ends_as_planned(summary):
    unexpected = [(s.phase, s.name, s.exit_code, s.outcome) for s in summary.steps if not s.as_expected]
    assert unexpected == []
    assert summary.unexpected == []
    assert summary.ok
    reached = {f"{s.phase}/{s.name}" for s in summary.steps}
    assert set(STORY) <= reached


def test_week1_model_beats_popularity_twice_over(summary):
    evaluate = _step(summary, "week 1", "evaluate").payload
    ndcg = evaluate["metrics"]["ndcg_at_10"]
    popularity = evaluate["baseline"]["metrics"]["ndcg_at_10"]
    assert ndcg >= 2 * popularity


def test_ab_test_is_decided_on_users_with_a_reason(summary):
    conclude = _step(summary, "week 2", "ab conclude").payload
    assert conclude["outcome"] in {"promoted", "kept-control"}
    serving = conclude["experiment"]["variant" if conclude["outcome"] == "promoted" else "control"]
    assert conclude["serving"] == serving
    assert "p = " in conclude["reason"]
    assert conclude["unit"] == conclude["decision"]["unit"] == "users"
    arms = conclude["arms"]
    # the unit is the user: each arm has fewer users than answers, and the reason counts users
    assert 0 < arms["variant"]["users"] < arms["variant"]["impressions"]
    assert f"{arms['variant']['users']} vs {arms['control']['users']} users" in conclude["reason"]


def test_drift_is_detected_in_week_3_and_retraining_runs(summary):
    monitor = _step(summary, "week 3", "monitor")
    assert monitor.exit_code == 1
    failed = [c["name"] for c in monitor.payload["checks"] if c["status"] == "fail"]
    assert any("drift" in name for name in failed)
    assert monitor.payload["retrain"]["status"] == "ran"


def test_the_alert_is_in_the_receivers_log_and_its_line_says_so(summary):
    assert summary.facts["week3_alerts"] >= 1
    assert summary.facts["alerts_received"] >= summary.facts["week3_alerts"]
    line = _step(summary, "week 3", "alert received").outcome
    assert f"logged {summary.facts['week3_alerts']} alert(s) in week 3" in line


def test_retraining_made_a_new_version_trained_on_week_3_data(summary):
    facts = summary.facts
    before, retrained = facts["version_before_week3"], facts["retrained_version"]
    assert int(retrained) > int(before)
    # the training run's data fingerprint is the MD5 of the week-3 file the demo wrote
    assert facts["retrained_data_fingerprint"] == f"md5:{facts['week3_data_md5']}"
    project = Project.load(Path(summary.project))
    lineage = get_version(project, retrained).lineage
    assert lineage.data_fingerprint == f"md5:{facts['week3_data_md5']}"


def test_the_canary_promoted_exactly_the_retrained_version(summary):
    canary = _step(summary, "week 3", "deploy canary")
    assert canary.exit_code == 0
    retrained = summary.facts["retrained_version"]
    assert str(canary.payload["version"]) == retrained
    assert summary.facts["serving_after_canary"] == retrained
    assert summary.facts["canary_errors"] == 0


def test_broken_feed_stops_the_pipeline_and_production_keeps_serving(summary):
    validate = _step(summary, "broken feed", "validate")
    assert validate.exit_code == 1
    assert validate.payload["failures"]
    still = _step(summary, "broken feed", "production still serves")
    assert still.as_expected
    assert f"version {summary.facts['retrained_version']} " in still.outcome


def test_a_planted_failure_that_does_not_happen_fails_the_demo(tmp_path):
    """Sabotage: week 3 without drift. `conveyor demo` must exit 1 and name the broken step."""
    env = {**os.environ, SABOTAGE_ENV: "no-drift"}
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "demo", "--size", "quick", "--workdir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] is False
    # the monitor exits 0 (or fails without a drift check): week 3 breaks, the rest is never reached
    assert {"week 3/monitor", "week 3/drift detected"} & set(report["unexpected"])
    assert "broken feed/feed stopped (not reached)" in report["unexpected"]
    line = [x for x in done.stderr.splitlines() if x.startswith("conveyor: CheckFailed")][-1]
    assert "demo: the story broke at" in line
    assert "week 3/" in line


def test_an_unknown_sabotage_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(SABOTAGE_ENV, "everything")
    from rich.console import Console

    with pytest.raises(UsageError, match=SABOTAGE_ENV):
        Demo(tmp_path, Template.RECOMMENDER, "quick", Console(stderr=True), keep=False).run()


def test_summary_is_not_ok_when_a_planted_failure_passes_or_the_story_stops():
    planted = StepResult("broken feed", "validate", "conveyor validate", 0, 1.0, {}, "ok", expected_exit=1)
    assert not DemoSummary(1.0, "p", [planted]).ok
    assert DemoSummary(1.0, "p", [planted]).unexpected == ["broken feed/validate"]
    failed = StepResult(
        "broken feed", "validate", "conveyor validate", 1, 1.0, {}, "2 rules", expected_exit=1
    )
    assert DemoSummary(1.0, "p", [failed]).ok
    stopped = DemoSummary(1.0, "p", [failed], required=("broken feed/validate", "end/status"))
    assert stopped.unexpected == ["end/status (not reached)"]
    assert not stopped.ok


def test_webhook_receiver_records_posts():
    import httpx

    with WebhookReceiver() as receiver:
        httpx.post(receiver.url + "/hook", json={"text": "hello"}, timeout=5)
    assert [r.body for r in receiver.received] == [{"text": "hello"}]
