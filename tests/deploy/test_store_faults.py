"""A team's shared stores dying in the middle of a deploy, for real.

The project runs in team mode: its state (ledger, deploy lock, rollout progress) in a real
PostgreSQL, its registry on a real ``mlflow server`` (backed by a second PostgreSQL, artifacts in
S3); production is the local supervised server. The tests kill those processes with SIGKILL or
freeze them with SIGSTOP (tests/services.py, ``ServiceProcess``) while a deploy runs, and assert
what an operator would check afterwards:

- the deploy stops with ONE line naming the store that failed — no traceback, no password, no S3
  key — and a non-zero exit;
- production answers the old version all along (zero failed requests under a bounded load);
- the ledger holds either the whole record of the deploy or none of it, the deploy lock is free,
  and the interruption is recorded by the next command once the store is back;
- the same deploy succeeds once the store is back.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conveyor.deploy import (
    Environment,
    EnvironmentProcess,
    FleetClient,
    Ledger,
    Rollout,
    deploy,
    rollback,
)
from conveyor.errors import ServiceError, StateStoreError
from conveyor.pipeline import conveyor_program
from conveyor.project import Project
from conveyor.registry import list_versions
from conveyor.state import PostgresStore
from conveyor.telemetry import TELEMETRY_OPT_OUT
from services import S3, MlflowServer, Postgres, running_mlflow_server, running_postgres
from support import finish_or_kill, free_port, wait_until, write_registered_shop

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.xdist_group("services")]

LOAD_CLIENT = Path(__file__).parent / "load_client.py"
WAIT_SECONDS = 120  # bound of every wait: model loads on a loaded 2-core machine
REGISTRY_TIMEOUT = 3  # registry.timeout_seconds of the project: a hung server is given up quickly
REGISTRY_RETRIES = 1
STATE_TIMEOUT = 10  # state.timeout_seconds: a frozen state store is given up after 10 s per statement


@dataclass
class Stores:
    state: Postgres  # the state store's cluster: killed by the tests
    registry_db: Postgres  # the MLflow server's backend: killed, the server answers 5xx
    mlflow: MlflowServer  # frozen: the registry hangs
    s3: S3
    template: Path  # a recommender project with versions 1-4 on the server


@dataclass
class Shop:
    root: Path
    env: dict[str, str]  # the runner's environment: the state store's URI among the shared settings
    state_uri: str
    secrets: tuple[str, ...]

    def run(self, *args: str, timeout: float = WAIT_SECONDS * 2) -> tuple[int, str, str]:
        proc = self.start(*args)
        out, err = self.output(proc, timeout, f"conveyor {' '.join(args)}")
        return proc.returncode, out, err

    def output(self, proc: subprocess.Popen[str], timeout: float, what: str) -> tuple[str, str]:
        """What ``proc`` printed, once it exits (bounded), with no secret in it."""
        out, err = finish_or_kill(proc, timeout, what)
        for secret in self.secrets:
            assert secret not in out + err, f"{what} printed a secret"
        return out, err

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*conveyor_program(), "--project", str(self.root), *args],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip

    def ok(self, *args: str) -> dict[str, Any]:
        code, out, err = self.run(*args, "--json")
        assert code == 0, f"conveyor {' '.join(args)} exited {code}: {err[-3000:]}"
        return json.loads(out)

    def process(self) -> EnvironmentProcess:
        return EnvironmentProcess(Project.load(self.root), "production")

    def served(self) -> dict[str, Any]:
        return httpx.get(self.process().base_url + "/version", timeout=10).json()

    @functools.cached_property
    def store(self) -> PostgresStore:
        """The state store, as this test process reads it (one connection pool for the module)."""
        return PostgresStore(self.state_uri)

    def ledger(self) -> list[tuple[str, str, str | None]]:
        entries = Ledger(self.store).entries("production")
        return [(e.action, e.outcome, e.version) for e in entries if e.action != "aliases"]


def _one_error_line(err: str) -> str:
    """The command's error: exactly one ``conveyor: …`` line, and no traceback anywhere."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("conveyor:")]
    assert len(lines) == 1, err
    return lines[0]


def _routing(state: dict[str, Any]) -> tuple[str | None, list[tuple[str, float]]]:
    """What a server serves: its primary, and every loaded version with its share."""
    return state["primary"], sorted((v["version"], v["share"]) for v in state["versions"])


def _serves_only(state: dict[str, Any], version: str) -> bool:
    shares = {v["version"]: v["share"] for v in state["versions"] if v["share"]}
    return state["primary"] == version and shares == {version: 1.0}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, s3: S3) -> Iterator[Stores]:
    """This module's own PostgreSQL clusters and MLflow server (the session's are never killed)."""
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    with running_postgres(crash_safe=True) as state, running_postgres(crash_safe=True) as registry_db:
        backend = registry_db.create_database("mlflow").replace("postgresql://", "postgresql+psycopg://", 1)
        with running_mlflow_server(backend, f"s3://{bucket}/artifacts", s3.env) as mlflow:
            template = tmp_path_factory.mktemp("store-faults") / "shop"
            template.mkdir()
            write_registered_shop(
                template,
                f"project: {{name: shop}}\nmodel: {{k: 5}}\nregistry: {{tracking_uri: '{mlflow.url}'}}\n",
            )
            yield Stores(state, registry_db, mlflow, s3, template)


def _alive(stores: Stores) -> None:
    """Every service up (a test that failed half-way may have left one killed or frozen)."""
    for service in (stores.state.service, stores.registry_db.service, stores.mlflow.service):
        assert service is not None
        service.thaw()
        if service.process is None or service.process.poll() is not None:
            service.restart()


@pytest.fixture(scope="module")
def shop_module(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """A fresh runner's checkout of the project: no .conveyor, state in PostgreSQL."""
    root = tmp_path_factory.mktemp("runner") / "shop"
    shutil.copytree(stores.template, root, ignore=shutil.ignore_patterns(".conveyor"))
    config = {
        "project": {"name": "shop"},
        "model": {"k": 5},
        "registry": {
            "tracking_uri": stores.mlflow.url,
            "timeout_seconds": REGISTRY_TIMEOUT,
            "retries": REGISTRY_RETRIES,
        },
        "state": {"timeout_seconds": STATE_TIMEOUT},
        "serving": {"request_log": {"flush_seconds": 0.5}},
        "deploy": {
            "health_timeout_seconds": 90,
            "environments": {"staging": {"port": free_port()}, "production": {"port": free_port()}},
            "canary": {"min_requests": 40, "interval_seconds": 60, "alpha": 0.001},
            "smoke": {"latency_budget_ms": 3000},
        },
    }
    (root / "conveyor.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    state_uri = stores.state.create_database(f"faults_{uuid.uuid4().hex[:8]}")
    env = {**os.environ, **TELEMETRY_OPT_OUT, "CONVEYOR_STATE_URI": state_uri, "GITHUB_ACTOR": "faults"}
    secrets = (stores.state.password, stores.s3.secret_key, stores.s3.access_key)
    yield Shop(root, env, state_uri, secrets)
    EnvironmentProcess(Project.load(root), "production").stop(grace=5)


@pytest.fixture
def shop(shop_module: Shop, stores: Stores, monkeypatch: pytest.MonkeyPatch) -> Shop:
    """Every store up, production serving version 1 alone, no rollout left behind."""
    _alive(stores)
    monkeypatch.setenv("CONVEYOR_STATE_URI", shop_module.state_uri)
    # back to version 1 the cheapest way: nothing, one rollback when 1 is the previous version (a
    # test left 2 serving), else a blue-green deploy (a side server's smoke test: ~40 s when loaded)
    if shop_module.process().running() and not _serves_only(shop_module.served(), "1"):
        state = shop_module.served()
        if state["previous"] == "1" and "1" in [v["version"] for v in state["versions"]]:
            shop_module.ok("rollback", "--env", "production")
    if not shop_module.process().running() or not _serves_only(shop_module.served(), "1"):
        shop_module.ok("deploy", "--env", "production", "--strategy", "blue-green", "--version", "1")
    assert _serves_only(shop_module.served(), "1")
    # a deploy record an earlier test left behind (its store died): production is already right,
    # so the record is cleared rather than recovered (which would add an "interrupted" line)
    shop_module.store.lock("envs/production/deploy").release()
    return shop_module


@contextmanager
def _load_on(url: str, out: Path) -> Iterator[None]:
    """A bounded load on ``url`` during the block (tests/deploy/load_client.py); its counts in ``out``."""
    stop = Path(f"{out}.stop")
    load = subprocess.Popen([sys.executable, str(LOAD_CLIENT), url, "300", "40", str(out), str(stop)])
    try:
        yield
    finally:
        stop.touch()
        try:
            load.wait(30)
        finally:
            load.kill()
    assert load.returncode == 0


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_state_store_killed_or_frozen_during_a_blue_green_deploy(
    shop: Shop, stores: Stores, tmp_path: Path, fault: str
) -> None:
    # killed: SIGKILL, connections refused; frozen: SIGSTOP, connections open and nothing answers
    # (a paused VM): each statement is given up after state.timeout_seconds instead of hanging
    service = stores.state.service
    assert service is not None
    fail, repair = (service.kill, service.restart) if fault == "killed" else (service.freeze, service.thaw)
    before = shop.ledger()
    with _load_on(shop.process().base_url, tmp_path / "load.json"):
        deploy = shop.start("deploy", "--env", "production", "--strategy", "blue-green", "--version", "2")
        # the candidate's smoke test runs on a side server: the deploy holds the lock, nothing switched
        side_server, lock = shop.process().side_server_file, "envs/production/deploy"
        wait_until(lambda: side_server.exists() and shop.store.lock_state(lock).held,
                   "the smoke test's side server", WAIT_SECONDS)  # fmt: skip
        fail()
        _out, err = shop.output(deploy, WAIT_SECONDS, "the deploy")
        assert deploy.returncode == 2, err
        line = _one_error_line(err)
        assert line.startswith(
            f"conveyor: StateStoreError: state store postgresql://conveyor@127.0.0.1:{stores.state.port}/"
        )
        assert line.endswith("the deploy of version 2 stopped and production serves version 1")
        if fault == "frozen":  # a pooled connection's statement, or (the pool's ping failed) a new connection
            bounded = rf"the server (gave no answer|accepted no connection) within {STATE_TIMEOUT} s"
            assert re.search(bounded, line), line
        assert _serves_only(shop.served(), "1")

        repair()
        # nothing of the attempt in the ledger; the lock is free. A killed store keeps the lock's
        # record, which says the deploy was interrupted; a frozen one, once thawed, runs what the
        # deploy sent before giving up — its release deletes the record when it got that far
        assert shop.ledger() == before
        assert not shop.store.lock_state("envs/production/deploy").held
        production = shop.ok("status")["environments"]["production"]
        assert production["expected"]["primary"] == "1"
        assert production["in_progress"] is None
        interrupted = production["interrupted"]
        if fault == "killed" or interrupted is not None:
            assert interrupted["command"].endswith("--strategy blue-green --version 2")

        again = shop.ok("deploy", "--env", "production", "--strategy", "blue-green", "--version", "2")
        assert again["outcome"] == "ok"
        if interrupted is not None:
            assert "deploy of version 2 (blue-green)" in again["recovered"]["interrupted"]
            assert again["recovered"]["serving"] == "1"
        assert _serves_only(shop.served(), "2")
    recorded = [("interrupted", "interrupted", "2")] if interrupted is not None else []
    assert shop.ledger()[len(before) :] == [*recorded, ("deploy", "ok", "2")]
    report = json.loads((tmp_path / "load.json").read_text())
    assert report["failures"] == []  # production answered all along: version 1, then 2
    assert int(report["statuses"]["200"]) > 50
    assert set(report["versions"]) <= {"1", "2"}


class _KillsTheStoreAfterTheSwitch(FleetClient):
    """The real admin client, with the fault timed by a hook: right after every replica switched,
    before the ledger line is written, the state store's PostgreSQL is killed (SIGKILL)."""

    def __init__(self, fleet: FleetClient, kill: Callable[[], None]) -> None:
        super().__init__(fleet.clients, environment=fleet.environment)
        self._kill = kill

    def switch(self, version: str) -> Any:
        state = super().switch(version)
        self._kill()
        return state


def test_a_switch_whose_ledger_line_cannot_be_written_is_switched_back(shop: Shop, stores: Stores) -> None:
    assert stores.state.service is not None
    before = shop.ledger()
    project = Project.load(shop.root)
    env = Environment.open(project, "production")
    env = dataclasses.replace(env, client=_KillsTheStoreAfterTheSwitch(env.client, stores.state.service.kill))
    lock = env.lock("deploy", version="2", strategy="blue-green")
    lock.acquire()
    try:
        rollout = Rollout(
            env=env, lock=lock, state=env.client.state(), candidate="2", previous="1", strategy="blue-green",
            report={"environment": "production", "strategy": "blue-green", "version": "2"},
            steps=None, interval=None, progress=lambda _message: None,
        )  # fmt: skip
        with pytest.raises(StateStoreError) as caught:
            rollout.switch()
    finally:
        with pytest.raises(StateStoreError):
            lock.release()  # the store is dead; its server drops the lock with the session
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"state store postgresql://conveyor@127.0.0.1:{stores.state.port}/")
    assert message.endswith("the deploy of version 2 stopped and production serves version 1")
    assert stores.state.password not in message
    assert _serves_only(shop.served(), "1")  # switched back: production never ran ahead of the ledger

    stores.state.service.restart()
    assert shop.ledger() == before  # no "deploy ok" for a switch that was undone


def test_a_deploy_whose_lock_was_lost_with_a_restarted_store_switches_nothing(
    shop: Shop, stores: Stores
) -> None:
    """PostgreSQL restarts while the deploy smoke-tests its candidate: the pool reconnects, but the
    lock went with the old session — the deploy must stop before its switch, not run unlocked."""
    service = stores.state.service
    assert service is not None
    before = shop.ledger()

    def restart_during_the_smoke_test(message: str) -> None:
        if message.startswith("smoke-testing version 2"):
            service.restart()  # SIGKILL, then the same cluster again: every session and its locks gone

    with pytest.raises(StateStoreError) as caught:
        deploy(Project.load(shop.root), "production", strategy="blue-green", version="2",
               progress=restart_during_the_smoke_test)  # fmt: skip
    message = str(caught.value)
    assert message.startswith(f"state store postgresql://conveyor@127.0.0.1:{stores.state.port}/")
    assert "cannot write a lock's record" in message
    assert message.endswith("the deploy of version 2 stopped and production serves version 1")
    served = shop.served()
    assert _serves_only(served, "1")
    assert [v["version"] for v in served["versions"]] == ["1"]  # the loaded candidate was unloaded
    assert shop.ledger() == before


def test_state_store_killed_between_two_ledger_writes_of_a_canary(shop: Shop, stores: Stores) -> None:
    assert stores.state.service is not None
    before = shop.ledger()
    canary = shop.start("deploy", "--env", "production", "--strategy", "canary", "--version", "2",
                        "--steps", "10,50,100", "--interval", "60")  # fmt: skip
    try:
        # the first step's ledger line is written and 10 % goes to version 2; the analysis waits
        wait_until(lambda: ("canary-step", "ok", "2") in shop.ledger()[len(before) :],
                   "the canary's first step", WAIT_SECONDS, poll=0.2)  # fmt: skip
        shares = {v["version"]: v["share"] for v in shop.served()["versions"] if v["share"]}
        assert shares == pytest.approx({"1": 0.9, "2": 0.1})
        stores.state.service.kill()
    finally:
        _out, err = shop.output(canary, WAIT_SECONDS, "the canary")
    assert canary.returncode == 2, err
    line = _one_error_line(err)
    assert f"state store postgresql://conveyor@127.0.0.1:{stores.state.port}/" in line
    assert line.endswith("the deploy of version 2 stopped and production serves version 1")
    served = shop.served()
    assert _serves_only(served, "1")  # the candidate's 10 % went back to version 1 ...
    assert [v["version"] for v in served["versions"]] == ["1"]  # ... and it was unloaded

    stores.state.service.restart()
    # the ledger: the step, and no outcome; no command reads it as a switch
    assert shop.ledger()[len(before) :] == [("canary-step", "ok", "2")]
    production = shop.ok("status")["environments"]["production"]
    assert production["expected"]["primary"] == "1"
    assert production["interrupted"]["version"] == "2"
    # the next deploy records the interruption, then does its own work
    again = shop.ok("deploy", "--env", "production", "--strategy", "blue-green", "--version", "2")
    assert again["recovered"]["serving"] == "1"
    assert shop.ledger()[len(before) :] == [
        ("canary-step", "ok", "2"), ("interrupted", "interrupted", "2"), ("deploy", "ok", "2"),
    ]  # fmt: skip


def test_a_rollback_that_loses_its_store_after_the_switch_keeps_it_and_the_next_command_records_it(
    shop: Shop, stores: Stores
) -> None:
    service = stores.state.service
    assert service is not None
    shop.ok("deploy", "--env", "production", "--strategy", "blue-green", "--version", "2")
    before = shop.ledger()

    def kill_after_the_switch(message: str) -> None:
        if message.startswith("switched back from 2 to 1"):  # said right after the switch, before the ledger
            service.kill()

    with pytest.raises(StateStoreError) as caught:
        rollback(Project.load(shop.root), "production", progress=kill_after_the_switch)
    message = str(caught.value)
    assert message.startswith(f"state store postgresql://conveyor@127.0.0.1:{stores.state.port}/")
    assert message.endswith(
        "the rollback itself is done: production serves version 1 "
        "(the next deploy or rollback writes its ledger line)"
    )
    assert _serves_only(shop.served(), "1")  # the operator asked for version 1: it stays

    service.restart()
    assert shop.ledger() == before  # the ledger still says 2 ...
    unchanged = shop.ok("deploy", "--env", "production", "--strategy", "blue-green", "--version", "1")
    assert unchanged["recovered"]["completed"] == "the rollback to 1"
    assert shop.ledger()[len(before) :] == [
        ("rollback", "ok", "1"), ("interrupted", "interrupted", None), ("deploy", "unchanged", "1"),
    ]  # fmt: skip  # ... until the next command completed the rollback's line
    assert _serves_only(shop.served(), "1")


def _deploy_while(shop: Shop, fault: Callable[[], None], repair: Callable[[], None]) -> str:
    """The error line of a deploy of version 2 run while ``fault`` holds (``repair`` undoes it)."""
    fault()
    try:
        # bounded: about (retries + 1) x registry.timeout_seconds, not MLflow's 16 minutes
        code, _out, err = shop.run("deploy", "--env", "production", "--version", "2", timeout=90)
    finally:
        repair()
    assert code == 1, err
    line = _one_error_line(err)
    assert err.strip().splitlines() == [line]  # and nothing else: no retry warnings, no progress
    return line


def test_a_hung_or_failing_registry_stops_the_deploy_in_one_line_and_switches_nothing(
    shop: Shop, stores: Stores
) -> None:
    mlflow, database = stores.mlflow.service, stores.registry_db.service
    assert mlflow is not None
    assert database is not None
    before, routing = shop.ledger(), _routing(shop.served())
    failed = f"conveyor: ServiceError: model registry '{stores.mlflow.url}': reading version 2 failed:"
    attempts = f"{REGISTRY_RETRIES + 1} attempts"
    waited = f"{REGISTRY_TIMEOUT} s ({attempts}; registry.timeout_seconds)"
    # SIGSTOP: the server's socket accepts connections, nothing answers
    assert _deploy_while(shop, mlflow.freeze, mlflow.thaw) == (
        f"{failed} the server gave no answer within {waited}"
    )
    # the server runs, its database is gone: every call is a 5xx (MLflow says 503, "temporarily unavailable")
    line = _deploy_while(shop, database.kill, database.restart)
    assert re.fullmatch(rf"{re.escape(failed)} the server answered HTTP 5\d\d \({attempts}\)", line), line

    assert _routing(shop.served()) == routing  # nothing switched, nothing loaded or unloaded
    assert shop.ledger() == before
    assert not shop.store.lock_state("envs/production/deploy").held
    # the registry answers again once its database is back (bounded: the server reconnects)
    wait_until(lambda: _registry_answers(shop), "the registry after its database restarted", 60, poll=1)


def _registry_answers(shop: Shop) -> bool:
    try:
        return len(list_versions(Project.load(shop.root))) == 4
    except ServiceError:
        return False
