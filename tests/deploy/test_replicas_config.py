"""Replicas without servers: the merged view of several replicas, pooled request logs, and the
one-line refusals of what a remote environment or a taken port cannot do."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.deploy._controller import ServerState
from conveyor.deploy._fleet import merge_states
from conveyor.deploy._observations import canary_samples
from conveyor.project import Project
from conveyor.requestlog import RequestLog

REMOTE = """project: {name: shop, id: shop-remote1}
deploy:
  environments:
    production:
      replicas: ['http://127.0.0.1:9', 'http://127.0.0.1:10']
      admin_token_env: SHOP_ADMIN_TOKEN
      request_logs: [logs/a, logs/b]
"""


def _state(primary: str | None, shares: dict[str, float], previous: str | None = None) -> ServerState:
    versions = [
        {"version": v, "variant": "primary" if v == primary else ("candidate" if s else "idle"), "share": s}
        for v, s in shares.items()
    ]
    body = {
        "project": "p",
        "env": "production",
        "primary": primary,
        "previous": previous,
        "versions": versions,
    }
    return ServerState.from_body(body)


def test_merged_state_agrees_only_where_every_replica_agrees():
    same = merge_states([("a", _state("1", {"1": 1.0, "2": 0.0}, "2")), ("b", _state("1", {"1": 1.0}, "2"))])
    assert (same.primary, same.previous) == ("1", "2")
    assert same.loaded("1")
    assert not same.loaded("2")
    assert same.share("1") == 1.0
    assert same.candidates == []
    # a blue-green switch interrupted half-way: no common primary, so recovery switches every replica
    half = merge_states(
        [("a", _state("2", {"2": 1.0, "1": 0.0}, "1")), ("b", _state("1", {"1": 1.0, "2": 0.0}, "2"))]
    )
    assert half.primary is None
    assert half.loaded("1")
    assert half.loaded("2")
    # a canary share left on one replica is a candidate of the environment
    canary = merge_states(
        [("a", _state("1", {"1": 0.9, "2": 0.1})), ("b", _state("1", {"1": 1.0, "2": 0.0}))]
    )
    assert canary.candidates == ["2"]
    assert canary.share("2") == 0.0  # the smallest share: not every replica gives 2 traffic
    assert [r["url"] for r in canary.to_dict()["replicas"]] == ["a", "b"]


def _log(directory, version: str, n: int, status: int = 200) -> None:
    log = RequestLog(directory, flush_rows=10_000, flush_seconds=60)
    log.start()
    for i in range(n):
        log.log_prediction(
            request_id=f"{version}-{i}-{directory.name}", env="production", model_version=version,
            variant="primary", endpoint="/recommend", user_id=i, features={"k": 5}, output={"items": [1]},
            latency_ms=5.0, status=status,
        )  # fmt: skip
    log.close()


def test_the_canary_analysis_pools_every_replicas_request_log(make_project):
    root = make_project(REMOTE)
    _log(root / "logs" / "a", "1", 30)
    _log(root / "logs" / "a", "2", 5, status=500)
    _log(root / "logs" / "b", "1", 20)
    _log(root / "logs" / "b", "2", 7)
    since = datetime.now(UTC) - timedelta(minutes=5)
    stable, candidate = canary_samples(Project.load(root), "production", since, "1", "2")
    assert (stable.requests, stable.errors) == (50, 0)
    assert (candidate.requests, candidate.errors) == (12, 5)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["env", "start", "--env", "production"], "is remote"),
        (["env", "stop", "--env", "production"], "is remote"),
        (["env", "logs", "--env", "production"], "is remote"),
        (["serve", "--env", "production"], "pass --port"),
    ],
)
def test_what_a_remote_environment_cannot_do_is_one_line(cli, make_project, monkeypatch, args, words):
    monkeypatch.delenv("SHOP_ADMIN_TOKEN", raising=False)
    root = make_project(REMOTE)
    result = cli("--project", root, *args)
    assert result.exit_code == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert words in line


def test_a_taken_port_is_refused_before_any_model_loads(cli, make_project):
    root = make_project("project: {name: shop}\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = cli("--project", root, "serve", "--env", "production", "--port", port)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert f"--port {port}: address already in use on 127.0.0.1 (checked before loading any model)" in line
