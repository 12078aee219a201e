"""Faults for real across three replicas behind HAProxy (round robin), under a bounded load.

Run alone with ``pytest -m fleet``. The deploy commands run from ``ops/``, a folder holding
only the project's conveyor.yaml; every count of the load client (tests/deploy/load_client.py)
comes through HAProxy, and every non-200 answer or connection error is a failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conveyor.deploy import EnvironmentLock, Ledger
from conveyor.project import Project
from conveyor.serving import sticky_point
from support import wait_until

pytestmark = [pytest.mark.fleet, pytest.mark.slow, pytest.mark.xdist_group("fleet")]
LOAD_CLIENT = Path(__file__).parent.parent / "deploy" / "load_client.py"
WAIT_SECONDS = 900  # a bound on a hung process or a condition never met, not a guess at how long a step takes


def _load(url: str, out: Path, seconds: float = WAIT_SECONDS, rate: float = 120) -> subprocess.Popen[bytes]:
    """The bounded load through ``url`` until ``out``.stop exists (or ``seconds``, a guard, pass)."""
    args = [sys.executable, str(LOAD_CLIENT), url, str(seconds), str(rate), str(out), f"{out}.stop"]
    return subprocess.Popen(args)


def _finish(load: subprocess.Popen[bytes], out: Path) -> dict:
    Path(f"{out}.stop").touch()
    try:
        assert load.wait(WAIT_SECONDS) == 0
    finally:
        load.kill()
    return json.loads(out.read_text())


def _deploy_in_background(fleet, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "conveyor", "--project", str(fleet.ops), "deploy", "--env", "production",
               *args, "--json"]  # fmt: skip
    return subprocess.Popen(command, env=fleet.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, what: str, seconds: float = WAIT_SECONDS) -> None:
    wait_until(condition, what, seconds, poll=0.05)


def _ledger(fleet) -> list:
    return [e for e in Ledger.of(Project.load(fleet.ops)).entries("production") if e.action != "aliases"]


def test_blue_green_and_rollback_across_three_replicas_drop_no_request(cli, fleet, tmp_path):
    out = tmp_path / "load.json"
    load = _load(fleet.lb_url, out)
    try:
        time.sleep(1.5)
        deployed = cli("--project", fleet.ops, "deploy", "--env", "production", "--strategy", "blue-green",
                       "--version", "2", "--json")  # fmt: skip
        assert deployed.exit_code == 0, deployed.stderr
        assert fleet.versions() == ["2", "2", "2"]
        line = _ledger(fleet)[-1]
        assert (line.action, line.outcome, line.version) == ("deploy", "ok", "2")
        assert line.details["previous"] == "1"
        assert line.details["replicas"] == fleet.urls
        time.sleep(1.5)
        back = cli("--project", fleet.ops, "rollback", "--env", "production", "--json")
        assert back.exit_code == 0, back.stderr
        assert back.json()["switch_ms"] < 1000  # one switch on every replica, in parallel
        assert fleet.versions() == ["1", "1", "1"]
        assert [fleet.state(i)["previous"] for i in range(3)] == ["2", "2", "2"]
        time.sleep(1.5)
    finally:
        report = _finish(load, out)
    assert report["failures"] == []
    assert int(report["statuses"]["200"]) > 300
    assert set(report["versions"]) == {"1", "2"}  # both served through HAProxy during the run
    status = cli("--project", fleet.ops, "status", "--json")
    assert status.exit_code == 0, status.stderr
    production = status.json()["environments"]["production"]
    assert production["remote"]
    assert production["running"]
    assert [(r["url"], r["ready"], r["primary"], r["weights"]) for r in production["replicas"]] == [
        (url, True, "1", {"1": 1.0}) for url in fleet.urls
    ]


def test_a_user_lands_on_the_same_arm_whichever_replica_answers(cli, fleet):
    started = cli("--project", fleet.ops, "ab", "start", "--variant-ratio", "0.5", "--version", "2", "--json")
    assert started.exit_code == 0, started.stderr
    try:
        arms = []
        for url in fleet.urls:
            with httpx.Client(base_url=url, timeout=10) as client:
                arms.append([client.post("/recommend", json={"user_id": u, "k": 5}).json()["model_version"]
                             for u in range(60)])  # fmt: skip
        assert arms[0] == arms[1] == arms[2]
        assert 10 < arms[0].count("2") < 50  # half the users, give or take: both arms are used
    finally:
        stopped = cli("--project", fleet.ops, "rollback", "--env", "production", "--json")
        assert stopped.exit_code == 0, stopped.stderr
    assert fleet.versions() == ["1", "1", "1"]


def test_during_a_canary_a_user_gets_the_same_version_from_every_replica(cli, fleet):
    # a canary of the healthy version 2 at its first step (10 %, a window of a minute), then stopped
    canary = _deploy_in_background(fleet, "--strategy", "canary", "--version", "2",
                                   "--steps", "10,50,100", "--interval", "60")  # fmt: skip
    try:
        _wait_for(lambda: any(e.action == "canary-step" and e.version == "2" for e in _ledger(fleet)),
                  "the first canary step")  # fmt: skip
        step = next(e for e in reversed(_ledger(fleet)) if e.action == "canary-step")
        salt = step.details["salt"]
        assert salt.startswith("canary:2:")
        assert (step.details["mode"], step.details["share"]) == ("sticky", 0.1)
        for i in range(3):  # the same weights, mode and salt on every replica
            state = fleet.state(i)
            assert (state["mode"], state["salt"]) == ("sticky", salt)
            assert {v["version"]: v["share"] for v in state["versions"]} == {
                "1": 0.9,
                "2": pytest.approx(0.1),
            }
        users = range(120)
        # the known answer: the stable version first in [0, 1), the candidate above 0.9
        expected = ["2" if sticky_point(salt, u) >= 0.9 else "1" for u in users]
        assert 0 < expected.count("2") < 40
        answers = []
        for url in [*fleet.urls, fleet.lb_url, fleet.lb_url, fleet.lb_url]:  # HAProxy: round robin
            with httpx.Client(base_url=url, timeout=10) as client:
                answers.append([client.post("/recommend", json={"user_id": u, "k": 5}).json()["model_version"]
                                for u in users])  # fmt: skip
        assert all(versions == expected for versions in answers)
    finally:
        stopped = cli("--project", fleet.ops, "rollback", "--env", "production", "--json")
        assert canary.wait(WAIT_SECONDS) == 1  # RolloutAborted: the operator's rollback stopped it
    assert stopped.exit_code == 0, stopped.stderr
    assert fleet.versions() == ["1", "1", "1"]
    assert all("2" not in [v["version"] for v in fleet.state(i)["versions"]] for i in range(3))


def test_a_failing_canary_is_rolled_back_on_every_replica(cli, fleet, tmp_path):
    out = tmp_path / "load.json"
    load = _load(fleet.lb_url, out, rate=150)
    try:
        time.sleep(1)
        # version 4 answers its first 50 calls per process (it passes its smoke test), then fails half;
        # an 8 s window holds calls past those 50 on every replica even when a loaded machine serves
        # far below the load's 150 requests/s (with 3 s a slow run saw only the healthy start)
        canary = cli("--project", fleet.ops, "deploy", "--env", "production", "--strategy", "canary",
                     "--version", "4", "--steps", "50,100", "--interval", "8", "--json")  # fmt: skip
    finally:
        report = _finish(load, out)
    assert canary.exit_code == 1, canary.stderr
    body = canary.json()
    assert body["outcome"] == "rolled-back"
    assert "canary analysis failed at 50 %" in body["reason"]
    for i in range(3):
        state = fleet.state(i)
        assert state["primary"] == "1"
        assert "4" not in [v["version"] for v in state["versions"]], state  # unloaded everywhere
    assert (_ledger(fleet)[-1].action, _ledger(fleet)[-1].outcome) == ("deploy", "rolled-back")
    assert int(report["statuses"].get("500", 0)) > 0  # the drill failed for real, through HAProxy
    assert "4" in report["versions"]  # the candidate's share was served through HAProxy
    # each replica wrote its own request log; the analysis pooled them
    for i in range(3):
        assert list((fleet.root / "logs" / f"replica-{i}").glob("predictions-*.parquet"))


def test_kill_9_of_a_replica_during_a_rollout_aborts_it_and_production_keeps_answering(cli, fleet, tmp_path):
    # version 2 served before and is kept loaded as the previous one: a rollback has a target
    for args in (("deploy", "--env", "production", "--version", "2"), ("rollback", "--env", "production")):
        assert cli("--project", fleet.ops, *args).exit_code == 0
    out = tmp_path / "load.json"
    load = _load(fleet.lb_url, out)
    side = Path(Project.load(fleet.ops).state_dir) / "envs" / "production" / "side-server.json"
    try:
        time.sleep(1)
        deploy = _deploy_in_background(fleet, "--strategy", "blue-green", "--version", "2")
        _wait_for(side.exists, "the candidate's smoke test")  # the rollout is under way
        fleet.kill(1)
        _, stderr = deploy.communicate(timeout=WAIT_SECONDS)
        time.sleep(2)  # production answers on, through the two others
    finally:
        report = _finish(load, out)
    assert deploy.returncode == 1, stderr
    [line] = [x for x in stderr.strip().splitlines() if x.startswith("conveyor:")]
    assert "phase failed on replica " + fleet.urls[1] in line
    assert "every replica stays on 1" in line
    assert [fleet.state(i)["primary"] for i in (0, 2)] == ["1", "1"]
    failed = _ledger(fleet)[-1]
    assert (failed.action, failed.outcome) == ("deploy", "failed")
    assert failed.details["replica"] == fleet.urls[1]
    # at most the requests in flight on the killed replica at that moment are lost (the load
    # client has 8 threads, one request each); HAProxy then takes it out of the rotation
    assert len(report["failures"]) <= 8, report["failures"]
    after = tmp_path / "after.json"
    again = _load(fleet.lb_url, after, seconds=3)
    assert again.wait(30) == 0
    answered = json.loads(after.read_text())
    assert answered["failures"] == []  # production keeps answering through the two others
    assert int(answered["statuses"]["200"]) > 100
    status = cli("--project", fleet.ops, "status", "--json").json()["environments"]["production"]
    assert not status["running"]
    assert status["replicas"][1]["error"]
    # one dead replica does not keep the others from rolling back
    back = cli("--project", fleet.ops, "rollback", "--env", "production", "--json")
    assert back.exit_code == 0, back.stderr
    assert back.json()["unreachable"] == [fleet.urls[1]]
    assert [fleet.state(i)["primary"] for i in (0, 2)] == ["2", "2"]


def test_a_second_deploy_from_another_folder_fails_clearly_while_one_runs(cli, fleet):
    first = _deploy_in_background(fleet, "--strategy", "blue-green", "--version", "2")
    lock = EnvironmentLock(
        Project.load(fleet.ops2).state_dir / "envs" / "production" / "deploy.lock", "production", "probe"
    )
    _wait_for(lambda: lock.probe() is not None, "the first deploy to take the lock")
    second = cli("--project", fleet.ops2, "deploy", "--env", "production", "--version", "2", "--json")
    assert second.exit_code == 1
    [line] = second.stderr.strip().splitlines()
    assert "DeployConflict" in line
    assert "locked by another deployment" in line
    assert f"pid {first.pid}" in line
    _, stderr = first.communicate(timeout=WAIT_SECONDS)
    assert first.returncode == 0, stderr
    assert fleet.versions() == ["2", "2", "2"]


def _admin(fleet, i: int, action: str, version: str) -> dict:
    headers = {"Authorization": f"Bearer {fleet.env['FLEET_ADMIN_TOKEN']}"}
    answer = httpx.post(
        f"{fleet.urls[i]}/admin/{action}", json={"version": version}, headers=headers, timeout=120
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_deploy_over_a_mixed_fleet_leaves_the_replica_already_serving_it_alone(cli, fleet):
    # what a replica restarted during a rollback sees: the others moved to 2 and keep 1 idle as
    # their previous version, the restarted one serves 1 (the alias it read at start)
    for i in (0, 2):
        if not any(v["version"] == "2" for v in fleet.state(i)["versions"]):
            _admin(fleet, i, "load", "2")
        _admin(fleet, i, "switch", "2")
    assert fleet.versions() == ["2", "1", "2"]
    deployed = cli("--project", fleet.ops, "deploy", "--env", "production", "--strategy", "blue-green",
                   "--version", "1", "--json")  # fmt: skip
    # before: "unloading version 1: replica ... refused: version 1 serves traffic" (it asked every
    # replica holding 1 to unload it, the one serving it too)
    assert deployed.exit_code == 0, deployed.stderr
    assert fleet.versions() == ["1", "1", "1"]


def test_servers_of_another_project_or_environment_are_refused(cli, fleet, tmp_path):
    raw = (fleet.ops / "conveyor.yaml").read_text()
    other = tmp_path / "other"
    other.mkdir()
    (other / "conveyor.yaml").write_text(raw.replace("id: shop-fleet01", "id: someone-else"))
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (renamed / "conveyor.yaml").write_text(raw.replace("    production:", "    staging:"))
    cases = [
        (other, "production", "belongs to project 'shop-fleet01', not to this project ('someone-else')"),
        (renamed, "staging", "serves environment 'production', not 'staging'"),
    ]
    for folder, env, words in cases:
        for args in (("deploy", "--env", env, "--version", "2"), ("rollback", "--env", env),
                     ("smoke", "--env", env)):  # fmt: skip
            result = cli("--project", folder, *args)
            assert result.exit_code == 2, (args, result.stderr)
            [line] = result.stderr.strip().splitlines()
            assert words in line or (args[0] == "smoke" and "belongs to" in line), (args, line)
        status = cli("--project", folder, "status")
        assert status.exit_code == 2
        assert "belongs to project" in status.stderr or "serves environment" in status.stderr
    assert fleet.versions() == ["1", "1", "1"]  # nothing was changed on them


def test_rolling_update_goes_replica_by_replica(cli, fleet, tmp_path):
    out = tmp_path / "load.json"
    load = _load(fleet.lb_url, out)
    try:
        rolled = cli("--project", fleet.ops, "deploy", "--env", "production", "--strategy", "rolling",
                     "--version", "2", "--json")  # fmt: skip
    finally:
        report = _finish(load, out)
    assert rolled.exit_code == 0, rolled.stderr
    assert [s["replica"] for s in rolled.json()["steps"]] == fleet.urls
    assert fleet.versions() == ["2", "2", "2"]
    steps = [e for e in _ledger(fleet) if e.action == "rolling-step"][-3:]
    assert [e.details["replica"] for e in steps] == fleet.urls
    assert report["failures"] == []


def test_a_rolling_update_stops_and_reverts_at_the_first_failing_replica(fleet):
    # replica 1 has switched and passed its smoke test; replica 2 dies (kill -9) while it loads
    # the candidate: the update stops there and replica 1 goes back to version 1
    before = len(_ledger(fleet))  # an earlier test's steps are no sign of this update's

    def stepped() -> bool:
        return any(e.action == "rolling-step" and e.version == "2" for e in _ledger(fleet)[before:])

    rolling = _deploy_in_background(fleet, "--strategy", "rolling", "--version", "2")
    _wait_for(stepped, "the first replica's step")
    fleet.kill(1)
    _, stderr = rolling.communicate(timeout=WAIT_SECONDS)
    assert rolling.returncode == 1, stderr
    [line] = [x for x in stderr.strip().splitlines() if x.startswith("conveyor:")]
    assert f"stopped at replica 2/3 ({fleet.urls[1]})" in line
    assert "1 replica(s) back on 1" in line
    assert [fleet.state(i)["primary"] for i in (0, 2)] == ["1", "1"]
    failed = _ledger(fleet)[-1]
    assert (failed.action, failed.outcome, failed.details["replica"]) == ("deploy", "failed", fleet.urls[1])
