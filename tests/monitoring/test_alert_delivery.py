"""Alert delivery against a real local receiver: retries, Retry-After, cooldown, outbox, secrets."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from conveyor.monitoring import send_alert
from conveyor.monitoring._delivery import parse_retry_after
from conveyor.project import Project

pytestmark = pytest.mark.xdist_group("monitoring-receiver")

SECRET = "T0000/B0000/XsEcReTtOkEn42"


def _project(make_project, channels: str, *, retries: int = 2, timeout: float = 2.0, cooldown: float = 60):
    root = make_project(
        f"alerts:\n  retries: {retries}\n  timeout_seconds: {timeout}\n  cooldown_minutes: {cooldown}\n"
        f"  channels:\n{channels}"
    )
    return Project.load(root)


@pytest.fixture
def slack(make_project, receiver, monkeypatch):
    monkeypatch.setenv("TEST_SLACK_URL", receiver.url(f"/services/{SECRET}"))
    return _project(make_project, "    - {name: ops, kind: slack, url_env: TEST_SLACK_URL}\n")


def test_each_kind_gets_its_payload_shape(make_project, receiver, monkeypatch):
    monkeypatch.setenv("U_SLACK", receiver.url("/slack"))
    monkeypatch.setenv("U_DISCORD", receiver.url("/discord"))
    monkeypatch.setenv("U_HOOK", receiver.url("/hook"))
    project = _project(
        make_project,
        "    - {name: s, kind: slack, url_env: U_SLACK}\n"
        "    - {name: d, kind: discord, url_env: U_DISCORD}\n"
        "    - {name: w, kind: webhook, url_env: U_HOOK}\n",
    )
    results = send_alert(project, "Drift found", "3 columns drifted", {"drifted": "category, price"})
    assert [(r.channel, r.status, r.attempts) for r in results] == [
        ("s", "delivered", 1),
        ("d", "delivered", 1),
        ("w", "delivered", 1),
    ]
    slack_body = receiver.at("/slack")[0].json()
    assert slack_body["text"].startswith("Drift found")
    assert slack_body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Drift found"},
    }
    assert {"type": "mrkdwn", "text": "*drifted*\ncategory, price"} in slack_body["blocks"][2]["fields"]
    embed = receiver.at("/discord")[0].json()["embeds"][0]
    assert embed["title"] == "Drift found"
    assert embed["fields"] == [{"name": "drifted", "value": "category, price", "inline": True}]
    hook = receiver.at("/hook")[0].json()
    assert hook["schema"] == "conveyor.alert/v1"
    assert hook["fields"] == {"drifted": "category, price"}
    assert receiver.at("/hook")[0].headers["content-type"] == "application/json"


def test_a_500_is_retried_then_delivered(slack, receiver):
    receiver.plan(500)
    [result] = send_alert(slack, "t", "x")
    assert (result.status, result.attempts, result.http_status) == ("delivered", 2, 200)
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body


def test_a_timeout_is_retried(make_project, receiver, monkeypatch):
    monkeypatch.setenv("TEST_SLACK_URL", receiver.url("/slow"))
    project = _project(make_project, "    - {name: ops, kind: slack, url_env: TEST_SLACK_URL}\n", timeout=0.3)
    receiver.plan(200, delay=1.0)
    [result] = send_alert(project, "t", "x")
    assert (result.status, result.attempts) == ("delivered", 2)


def test_429_retry_after_is_honoured(slack, receiver):
    receiver.plan(429, retry_after="1")
    [result] = send_alert(slack, "t", "x")
    assert (result.status, result.attempts) == ("delivered", 2)
    first, second = receiver.requests
    assert second.at - first.at >= 0.95  # the receiver asked for one second


def test_a_retry_after_beyond_the_bound_is_not_waited_but_queued(slack, receiver):
    receiver.plan(429, retry_after="3600")
    [result] = send_alert(slack, "t", "x")
    assert (result.status, result.attempts, result.http_status) == ("queued", 1, 429)
    assert "3600" in (result.error or "")


def test_a_4xx_is_not_retried(slack, receiver):
    receiver.plan(404)
    [result] = send_alert(slack, "t", "x")
    assert (result.status, result.attempts, result.http_status) == ("queued", 1, 404)


def test_cooldown_suppresses_the_same_incident_only(slack, receiver):
    first = send_alert(slack, "Drift", "x", incident="drift:production")
    second = send_alert(slack, "Drift", "x", incident="drift:production")
    other = send_alert(slack, "Errors", "x", incident="errors:production")
    assert [r.status for r in first] == ["delivered"]
    assert [r.status for r in second] == ["suppressed"]
    assert [r.status for r in other] == ["delivered"]
    assert len(receiver.requests) == 2


def test_zero_cooldown_never_suppresses(make_project, receiver, monkeypatch):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n", cooldown=0)
    for _ in range(2):
        assert [r.status for r in send_alert(project, "t", "x", incident="i")] == ["delivered"]
    assert len(receiver.requests) == 2


def test_a_failed_delivery_is_kept_and_sent_with_the_next_alert(make_project, receiver, monkeypatch):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n", retries=1)
    receiver.plan(503, times=2)
    [failed] = send_alert(project, "first", "x")
    assert (failed.status, failed.attempts) == ("queued", 2)
    outbox = json.loads((project.state_dir / "monitoring" / "outbox.json").read_text())
    assert [e["title"] for e in outbox["entries"]] == ["first"]
    results = send_alert(project, "second", "y")
    assert [(r.title, r.status, r.from_outbox) for r in results] == [
        ("first", "delivered", True),
        ("second", "delivered", False),
    ]
    assert [r.json()["title"] for r in receiver.requests] == ["first", "first", "first", "second"]
    assert json.loads((project.state_dir / "monitoring" / "outbox.json").read_text()) == {"entries": []}


def test_a_missing_url_variable_is_queued_and_named(make_project, monkeypatch):
    monkeypatch.delenv("NOT_SET_URL", raising=False)
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: NOT_SET_URL}\n")
    [result] = send_alert(project, "t", "x")
    assert result.status == "queued"
    assert "NOT_SET_URL" in (result.error or "")


def test_the_secret_url_appears_in_no_output_log_or_state(slack, receiver, cli, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.plan(500, times=3)  # every attempt fails: the outbox keeps it
    failing = cli("alert", "test", "--project", slack.root, "--json")
    ok = cli("alert", "test", "--project", slack.root)
    receiver.stop()  # now the connection is refused: transport errors, also redacted
    refused = cli("alert", "test", "--project", slack.root, "--json")
    assert failing.exit_code == 1
    assert failing.json()["deliveries"][0]["status"] == "queued"
    assert ok.exit_code == 0
    assert refused.exit_code == 1
    state_files = "".join(p.read_text() for p in (slack.state_dir / "monitoring").glob("*.json"))
    texts = [failing.stdout, failing.stderr, ok.stdout, ok.stderr, refused.stdout, refused.stderr]
    texts += [caplog.text, state_files]
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log requests
    for text in texts:
        assert "XsEcReTtOkEn42" not in text
        assert "/services/" not in text


def test_alert_test_without_channels_is_a_usage_error(cli, make_project):
    root = make_project("")
    result = cli("alert", "test", "--project", root)
    assert result.exit_code == 2
    assert "alerts.channels" in result.stderr
    assert result.stderr.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Wed, 26 Nov 2025 12:00:10 GMT", 10.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_parsing(header, seconds):
    now = datetime(2025, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now) == seconds
