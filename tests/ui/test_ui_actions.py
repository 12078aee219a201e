"""The page's actions against real servers and the real ledger: refused without the admin token,
confirmed with a reason and a CSRF token with it, run through the CLI's own deploy functions."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support_ui import get

from conveyor.deploy import Ledger
from conveyor.project import Project
from conveyor.ui import create_ui_app

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.slow]
TOKEN = "ui-admin-s3cret-token"
HEADER = {"X-Conveyor-Admin-Token": TOKEN}
PAGES = ("/environments", "/rollouts", "/models", "/data")


def _last(root: Path, action: str):
    return [e for e in Ledger.of(Project.load(root)).entries("production") if e.action == action][-1]


def _one_line(answer, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert answer.text.count("\n") == 1, answer.text
    assert "Traceback" not in answer.text
    return answer.text.strip()


def _deploy(cli, root: Path, *versions: str) -> None:
    for version in versions:
        done = cli("--project", root, "deploy", "--env", "production", "--version", version, "--json")
        assert done.exit_code == 0, done.stderr


def _canary_at_its_first_step(root: Path) -> subprocess.Popen[bytes]:
    """`conveyor deploy --strategy canary` of version 2 in its own process, at its first step (windows of
    a minute: it runs until someone acts)."""
    command = [sys.executable, "-m", "conveyor", "--project", str(root), "deploy", "--env",
               "production", "--strategy", "canary", "--version", "2", "--interval", "60"]  # fmt: skip
    canary = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = Ledger.of(Project.load(root))
    deadline = time.monotonic() + 120
    while not any(e.action == "canary-step" for e in ledger.entries()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return canary


def test_without_the_token_the_page_is_read_only(cli, deploy_project: Path, monkeypatch) -> None:
    monkeypatch.delenv("CONVEYOR_ADMIN_TOKEN", raising=False)
    _deploy(cli, deploy_project, "1", "2")
    client = TestClient(create_ui_app(Project.load(deploy_project)))
    for page in PAGES:
        html = get(client, page)
        assert "data-action=" not in html
        assert "Unlock actions" not in html
    form = {"env": "production", "why": "test", "confirm": "yes"}
    line = _one_line(client.post("/actions/rollback", data=form, headers=HEADER), 403)
    assert line == "actions are off: set CONVEYOR_ADMIN_TOKEN for `conveyor ui` to enable them"
    assert _one_line(client.post("/unlock", data={"token": TOKEN}), 403) == line
    assert _one_line(client.get("/actions/rollback?env=production"), 403) == line
    assert Ledger.of(Project.load(deploy_project)).entries("production")[-1].action != "rollback"


def test_rollback_needs_the_token_a_confirmation_and_a_reason(cli, deploy_project: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONVEYOR_ADMIN_TOKEN", TOKEN)
    _deploy(cli, deploy_project, "1", "2")
    client = TestClient(create_ui_app(Project.load(deploy_project)))
    html = get(client, "/environments")
    assert "data-action=" not in html  # not unlocked yet: no button
    assert 'href="/unlock"' in html
    form = {"env": "production", "why": "checkout errors", "confirm": "yes"}
    assert _one_line(client.post("/actions/rollback", data=form), 403).startswith(
        "actions need the admin token"
    )
    wrong = client.post("/actions/rollback", data=form, headers={"X-Conveyor-Admin-Token": "nope"})
    assert _one_line(wrong, 403).startswith("actions need the admin token")
    assert client.post("/unlock", data={"token": "nope"}).status_code == 403

    unlocked = client.post("/unlock", data={"token": TOKEN}, follow_redirects=False)
    assert unlocked.status_code == 303
    assert TOKEN not in unlocked.headers["set-cookie"]
    html = get(client, "/environments")
    assert 'data-action="rollback"' in html
    for page in PAGES:
        assert TOKEN not in get(client, page)
    confirm = get(client, "/actions/rollback?env=production")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', confirm)[1]
    # the session alone is not enough: the form's CSRF token, the confirmation and a reason are needed
    assert _one_line(client.post("/actions/rollback", data=form), 403).startswith("the confirmation form")
    no_confirm = client.post("/actions/rollback", data={**form, "csrf": csrf, "confirm": ""})
    assert _one_line(no_confirm, 400).startswith("confirm:")
    no_reason = client.post("/actions/rollback", data={**form, "csrf": csrf, "why": "  "})
    assert _one_line(no_reason, 400).startswith("rollback refused: why:")
    other_env = client.post("/actions/rollback", data={**form, "csrf": csrf, "env": "staging"})
    assert _one_line(other_env, 403).startswith("the confirmation form")  # bound to its environment
    assert _last(deploy_project, "deploy").version == "2"

    done = client.post("/actions/rollback", data={**form, "csrf": csrf})
    assert done.status_code == 200, done.text
    entry = _last(deploy_project, "rollback")
    assert entry.who == "ui"
    assert entry.reason.endswith("; why: checkout errors")
    assert entry.version == "1"
    status = cli("--project", deploy_project, "status", "--json").json()["environments"]["production"]
    assert status["server"]["primary"] == "1"
    assert f"{entry.outcome}: {entry.reason.split('; why')[0]}" in done.text

    # nothing runs: abort is refused, the ledger unchanged
    entries = len(Ledger.of(Project.load(deploy_project)).entries())
    abort = client.post("/actions/abort", data=form, headers=HEADER)
    assert _one_line(abort, 409) == "abort refused: no rollout is running in 'production': nothing to abort"
    unknown = client.post("/actions/rollback", data={**form, "env": "moon"}, headers=HEADER)
    assert _one_line(unknown, 400).startswith("rollback refused: env 'moon': no such environment")
    assert len(Ledger.of(Project.load(deploy_project)).entries()) == entries


def test_conclude_an_ab_test_with_the_token_in_a_header(cli, deploy_project: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONVEYOR_ADMIN_TOKEN", TOKEN)
    _deploy(cli, deploy_project, "1")
    started = cli("--project", deploy_project, "ab", "start", "--version", "2", "--variant-ratio", "0.5")
    assert started.exit_code == 0, started.stderr
    client = TestClient(create_ui_app(Project.load(deploy_project)))
    form = {"env": "production", "why": "the week is over", "confirm": "yes"}
    done = client.post("/actions/conclude", data=form, headers=HEADER)
    assert done.status_code == 200, done.text
    entry = _last(deploy_project, "ab-conclude")
    assert (entry.who, entry.outcome, entry.version) == ("ui", "kept-control", "1")  # no traffic: no win
    assert entry.reason.endswith("; why: the week is over")
    again = client.post("/actions/conclude", data=form, headers=HEADER)
    assert _one_line(again, 400).startswith("conclude refused: no A/B test runs in 'production'")


def test_abort_a_running_canary(cli, deploy_project: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONVEYOR_ADMIN_TOKEN", TOKEN)
    _deploy(cli, deploy_project, "1")
    canary = _canary_at_its_first_step(deploy_project)
    try:
        client = TestClient(create_ui_app(Project.load(deploy_project)))
        client.post("/unlock", data={"token": TOKEN})
        page = get(client, "/rollouts")
        assert 'data-action="abort"' in page  # the canary in progress offers its abort
        confirm = get(client, "/actions/abort?env=production")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', confirm)[1]
        done = client.post("/actions/abort", data={"env": "production", "why": "p99 alarm", "csrf": csrf,
                                                   "confirm": "yes"})  # fmt: skip
        assert done.status_code == 200, done.text
        assert canary.wait(timeout=60) == 1  # the rollout stopped: RolloutAborted
    finally:
        canary.kill()
        canary.wait()
    assert _last(deploy_project, "deploy").outcome == "aborted"
    rollback = _last(deploy_project, "rollback")
    assert rollback.who == "ui"
    assert rollback.reason.endswith("; why: p99 alarm")
    status = cli("--project", deploy_project, "status", "--json").json()["environments"]["production"]
    assert [v["version"] for v in status["server"]["versions"]] == ["1"]
    assert '<span class="badge bad" data-outcome>aborted</span>' in get(client, "/rollouts")


def test_promote_a_running_canary_from_the_page(cli, deploy_project: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONVEYOR_ADMIN_TOKEN", TOKEN)
    _deploy(cli, deploy_project, "1")
    client = TestClient(create_ui_app(Project.load(deploy_project)))
    form = {"env": "production", "why": "ship it", "confirm": "yes"}
    nothing = client.post("/actions/promote", data=form, headers=HEADER)
    assert (
        _one_line(nothing, 409) == "promote refused: no canary is running in 'production': nothing to promote"
    )
    canary = _canary_at_its_first_step(deploy_project)
    try:
        # without the token: refused, and the canary runs on
        assert _one_line(client.post("/actions/promote", data=form), 403).startswith(
            "actions need the admin token"
        )
        assert canary.poll() is None
        client.post("/unlock", data={"token": TOKEN})
        page = get(client, "/rollouts")
        assert 'data-action="promote"' in page  # beside its abort
        assert 'data-action="abort"' in page
        confirm = get(client, "/actions/promote?env=production")
        assert "conveyor canary promote --env production" in confirm
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', confirm)[1]
        done = client.post("/actions/promote", data={**form, "why": "error rate flat", "csrf": csrf})
        assert done.status_code == 200, done.text
        assert "promoted: promoted by hand at 10 % by ui" in done.text
        assert canary.wait(timeout=60) == 0  # the canary promoted itself on the request and exited
    finally:
        canary.kill()
        canary.wait()
    promote = _last(deploy_project, "promote")
    assert (promote.who, promote.version, promote.details["step"]) == ("ui", "2", 10.0)
    assert promote.reason.endswith("; why: error rate flat")
    status = cli("--project", deploy_project, "status", "--json").json()["environments"]["production"]
    assert status["server"]["primary"] == "2"
    assert {v["version"]: v["share"] for v in status["server"]["versions"] if v["share"] > 0} == {"2": 1.0}
    rollouts = get(client, "/rollouts")
    assert '<span class="badge ok" data-outcome>promoted</span>' in rollouts
    assert "not analysed: the rollout ended during this step" in rollouts
