"""A reduced demo, end to end, on real servers, the real registry and a real webhook receiver.

Known answers: every planted outcome must happen — the recommender beats the
popularity baseline at least twice over, the A/B test is decided by the test,
the week-3 drift is detected and an alert is delivered over HTTP, the
retrained model goes out by canary, the broken feed is stopped by validation
while production keeps serving the same version.
"""

from __future__ import annotations

import pytest

from conveyor.config import Template
from conveyor.demo import Demo, WebhookReceiver

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]


@pytest.fixture(scope="session")
def summary(tmp_path_factory):
    from rich.console import Console

    console = Console(stderr=True)
    workdir = tmp_path_factory.mktemp("demo")
    return Demo(workdir, Template.RECOMMENDER, "quick", console, keep=False).run()


def _step(summary, phase, name):
    found = [s for s in summary.steps if s.phase == phase and s.name == name]
    assert found, f"no step {phase}/{name}: {[(s.phase, s.name) for s in summary.steps]}"
    return found[-1]


def test_every_step_ends_as_planned(summary):
    unexpected = [(s.phase, s.name, s.exit_code, s.outcome) for s in summary.steps if not s.as_expected]
    assert unexpected == []
    assert summary.ok


def test_week1_model_beats_popularity_twice_over(summary):
    evaluate = _step(summary, "week 1", "evaluate").payload
    ndcg = evaluate["metrics"]["ndcg_at_10"]
    popularity = evaluate["baseline"]["metrics"]["ndcg_at_10"]
    assert ndcg >= 2 * popularity


def test_ab_test_is_decided_with_a_reason(summary):
    conclude = _step(summary, "week 2", "ab conclude").payload
    assert conclude["outcome"] in {"promoted", "kept-control"}
    serving = conclude["experiment"]["variant" if conclude["outcome"] == "promoted" else "control"]
    assert conclude["serving"] == serving
    assert "p = " in conclude["reason"]


def test_drift_is_detected_alerted_and_retrained(summary):
    monitor = _step(summary, "week 3", "monitor")
    assert monitor.exit_code == 1
    assert summary.facts["week3_alerts"] >= 1
    canary = _step(summary, "week 3", "deploy canary")
    assert canary.exit_code == 0


def test_broken_feed_stops_the_pipeline_and_production_keeps_serving(summary):
    assert _step(summary, "broken feed", "validate").exit_code == 1
    assert _step(summary, "broken feed", "production still serves").as_expected


def test_webhook_receiver_records_posts():
    import httpx

    with WebhookReceiver() as receiver:
        httpx.post(receiver.url + "/hook", json={"text": "hello"}, timeout=5)
    assert [r.body for r in receiver.received] == [{"text": "hello"}]
