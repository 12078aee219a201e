"""Alert delivery against a real local receiver: retries, Retry-After, cooldown, outbox, secrets.

The exactly-once tests slow the receiver down, make it answer 500 or 429, hang
up on the client and kill a sender with SIGKILL mid-request, then assert how
many copies arrived, in what order, with which idempotency key, and what the
outbox holds.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from conveyor.monitoring import send_alert
from conveyor.monitoring._delivery import parse_retry_after
from conveyor.project import Project

pytestmark = pytest.mark.xdist_group("monitoring-receiver")

SECRET = "T0000/B0000/XsEcReTtOkEn42"


def _project(
    make_project,
    channels: str,
    *,
    retries: int = 2,
    timeout: float = 2.0,
    cooldown: float = 60,
    resend: float = 10,
):
    root = make_project(
        f"alerts:\n  retries: {retries}\n  timeout_seconds: {timeout}\n  cooldown_minutes: {cooldown}\n"
        f"  resend_unanswered_after_minutes: {resend}\n  channels:\n{channels}"
    )
    return Project.load(root)


def _outbox(project: Project) -> list[dict]:
    path = project.state_dir / "monitoring" / "outbox.json"
    return json.loads(path.read_text())["entries"] if path.exists() else []


def _keys(requests) -> list[str]:
    """The Idempotency-Key header of each request (a quoted structured-field string)."""
    return [r.headers["idempotency-key"].strip('"') for r in requests]


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
    assert _keys(receiver.requests) == [result.key, result.key]
    assert f"key `{result.key}`" in receiver.requests[0].json()["blocks"][-1]["elements"][0]["text"]


def test_a_slow_receiver_gets_one_copy_and_no_resend_while_it_may_be_processing(
    make_project, receiver, monkeypatch
):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n", retries=3, timeout=0.3)
    receiver.plan(200, delay=1.0)  # answers after the client stopped waiting: it got the alert
    [slow] = send_alert(project, "Drift", "x", incident="drift:production")
    assert (slow.status, slow.attempts, slow.http_status) == ("unconfirmed", 1, None)
    assert [e["state"] for e in _outbox(project)] == ["unconfirmed"]
    # the next alert does not resend it: the receiver may still be processing the first copy
    results = send_alert(project, "Errors", "y", incident="errors:production")
    assert [(r.title, r.status) for r in results] == [("Errors", "delivered")]
    assert [r.json()["title"] for r in receiver.requests] == ["Drift", "Errors"]
    [kept] = _outbox(project)
    assert (kept["title"], kept["state"], kept["key"]) == ("Drift", "unconfirmed", slow.key)


def test_an_unanswered_alert_is_resent_after_the_grace_with_the_same_key(make_project, receiver, monkeypatch):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n", timeout=0.3, resend=0)
    receiver.plan(200, delay=1.0)
    [slow] = send_alert(project, "Drift", "x", incident="drift:production")
    assert slow.status == "unconfirmed"
    results = send_alert(project, "Errors", "y", incident="errors:production")
    assert [(r.title, r.status, r.from_outbox) for r in results] == [
        ("Drift", "delivered", True),
        ("Errors", "delivered", False),
    ]
    titles = [r.json()["title"] for r in receiver.requests]
    assert titles == ["Drift", "Drift", "Errors"]
    drift_keys = {r.json()["idempotency_key"] for r in receiver.requests[:2]} | set(
        _keys(receiver.requests[:2])
    )
    assert drift_keys == {slow.key}  # the receiver can drop the second copy
    assert _keys(receiver.requests[2:]) == [results[1].key] != [slow.key]
    assert _outbox(project) == []


def test_429_retry_after_is_honoured(slack, receiver):
    receiver.plan(429, retry_after="1")
    [result] = send_alert(slack, "t", "x")
    assert (result.status, result.attempts) == ("delivered", 2)
    first, second = receiver.requests
    assert second.at - first.at >= 0.95  # the receiver asked for one second
    assert _keys(receiver.requests) == [result.key, result.key]
    assert _outbox(slack) == []


def test_a_dropped_connection_is_resent_with_the_same_key(make_project, receiver, monkeypatch):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n")
    receiver.plan(drop=True)  # the receiver read the alert and hung up without answering
    [result] = send_alert(project, "Drift", "x", incident="drift:production")
    assert (result.status, result.attempts, result.http_status) == ("delivered", 2, 200)
    assert [r.json()["idempotency_key"] for r in receiver.requests] == [result.key, result.key]
    assert _keys(receiver.requests) == [result.key, result.key]
    assert _outbox(project) == []


def test_a_receiver_that_always_hangs_up_leaves_a_pending_entry(make_project, receiver, monkeypatch):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n", retries=1)
    receiver.plan(drop=True, times=2)
    [result] = send_alert(project, "Drift", "x")
    assert (result.status, result.attempts) == ("queued", 2)
    assert "RemoteProtocolError" in (result.error or "")
    [entry] = _outbox(project)
    assert (entry["state"], entry["attempts"], entry["key"]) == ("pending", 2, result.key)


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
    assert failing.json()["deliveries"][0]["status"] == "failed"
    assert failing.json()["outbox"] == 0  # a test alert is never kept
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


def test_a_failing_channel_keeps_later_alerts_behind_the_first_and_delivers_them_in_order(
    make_project, receiver, monkeypatch
):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n", retries=1)
    receiver.plan(503, times=4)
    [first] = send_alert(project, "first", "x")
    assert (first.status, first.attempts) == ("queued", 2)
    resent, second = send_alert(project, "second", "y")
    assert (resent.title, resent.status, resent.attempts, resent.from_outbox) == ("first", "queued", 2, True)
    assert (second.title, second.status, second.attempts) == ("second", "queued", 0)  # waits behind "first"
    assert [e["title"] for e in _outbox(project)] == ["first", "second"]
    assert len(receiver.requests) == 4  # one retry schedule per call, not one per queued alert
    results = send_alert(project, "third", "z")  # the receiver is back
    assert [(r.title, r.status) for r in results] == [("first", "delivered"), ("second", "delivered"),
                                                       ("third", "delivered")]  # fmt: skip
    assert [r.json()["title"] for r in receiver.requests[4:]] == ["first", "second", "third"]
    assert _keys(receiver.requests[4:]) == [first.key, second.key, results[2].key]
    assert _outbox(project) == []


def test_a_payload_the_receiver_refuses_does_not_hold_newer_alerts_back(make_project, receiver, monkeypatch):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n")
    receiver.plan(400)
    [refused] = send_alert(project, "first", "x")
    assert (refused.status, refused.attempts, refused.http_status) == ("queued", 1, 400)
    receiver.plan(400)  # refused again on the resend
    resent, second = send_alert(project, "second", "y")
    assert (resent.title, resent.status, resent.http_status) == ("first", "queued", 400)
    assert (second.title, second.status, second.attempts) == ("second", "delivered", 1)
    assert [r.json()["title"] for r in receiver.requests] == ["first", "first", "second"]
    assert [(e["title"], e["state"], e["attempts"]) for e in _outbox(project)] == [("first", "pending", 2)]


def test_a_test_alert_is_never_queued_nor_sent_behind_real_alerts(make_project, receiver, cli, monkeypatch):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n", retries=0)
    receiver.plan(503)
    [real] = send_alert(project, "Drift", "x", incident="drift:production")
    assert real.status == "queued"
    receiver.plan(503)
    failed = cli("alert", "test", "--project", project.root, "--json")
    assert failed.exit_code == 1
    assert [d["status"] for d in failed.json()["deliveries"]] == ["failed"]
    ok = cli("alert", "test", "--project", project.root, "--json")
    assert ok.exit_code == 0
    assert [(d["title"], d["status"]) for d in ok.json()["deliveries"]] == [
        ("Conveyor test alert", "delivered")
    ]
    assert ok.json()["outbox"] == 1
    # only the real alert waits in the outbox; the next real alert sends it, and no test alert follows
    assert [(e["title"], e["state"]) for e in _outbox(project)] == [("Drift", "pending")]
    send_alert(project, "Errors", "y")
    titles = [r.json()["title"] for r in receiver.requests]
    assert titles == ["Drift", "Conveyor test alert", "Conveyor test alert", "Drift", "Errors"]


def test_test_alerts_left_in_an_old_outbox_are_dropped_not_sent(make_project, receiver, monkeypatch):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n")
    old_entry = {"id": "a", "channel": "w", "kind": "webhook", "created_at": "2026-01-01T00:00:00+00:00",
                 "attempts": 4, "last_error": "HTTP 500", "incident": None}  # fmt: skip
    entries = [
        {**old_entry, "id": "t", "title": "Conveyor test alert", "payload": {"title": "Conveyor test alert"}},
        {**old_entry, "id": "r", "title": "Drift", "payload": {"title": "Drift"}},
    ]
    (project.state_dir / "monitoring").mkdir(parents=True)
    (project.state_dir / "monitoring" / "outbox.json").write_text(json.dumps({"entries": entries}))
    results = send_alert(project, "Errors", "y")
    assert [(r.title, r.status) for r in results] == [("Drift", "delivered"), ("Errors", "delivered")]
    assert [r.json()["title"] for r in receiver.requests] == ["Drift", "Errors"]
    assert _outbox(project) == []


_SENDER = """
import sys
from conveyor.monitoring import send_alert
from conveyor.project import Project
send_alert(Project.load(sys.argv[1]), "Drift", "x", incident="drift:production")
"""


def test_a_sender_killed_mid_request_leaves_an_unconfirmed_entry_that_is_not_resent(
    make_project, receiver, monkeypatch
):
    monkeypatch.setenv("U", receiver.url("/hook"))
    project = _project(make_project, "    - {name: w, kind: webhook, url_env: U}\n", timeout=30)
    receiver.plan(200, delay=10.0)  # holds the request while the sender is killed
    sender = subprocess.Popen([sys.executable, "-c", _SENDER, str(project.root)], env=os.environ.copy())
    try:
        for _ in range(600):  # bounded: at most ~60 s for the interpreter to start and post
            if receiver.requests or sender.poll() is not None:
                break
            time.sleep(0.1)
        assert receiver.requests, "the sender never reached the receiver"
        os.kill(sender.pid, signal.SIGKILL)
    finally:
        sender.kill()
        sender.wait(timeout=30)
    [entry] = _outbox(project)
    assert entry["state"] == "sending"  # written before the request went out
    results = send_alert(project, "Errors", "y", incident="errors:production")
    assert [(r.title, r.status) for r in results] == [("Errors", "delivered")]
    assert [r.json()["title"] for r in receiver.requests] == ["Drift", "Errors"]
    [entry] = _outbox(project)
    assert (entry["title"], entry["state"]) == ("Drift", "unconfirmed")
    assert entry["key"] == receiver.requests[0].json()["idempotency_key"]
    # the same incident again: suppressed, with the key of the copy the receiver may hold
    [again] = send_alert(project, "Drift", "x", incident="drift:production")
    assert (again.status, again.key) == ("suppressed", entry["key"])
    assert len(receiver.requests) == 2
