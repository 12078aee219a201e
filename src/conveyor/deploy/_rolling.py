"""The rolling update: replica by replica, each health-checked and smoke-tested before the next.

For each replica in the order of ``deploy.environments.<env>.replicas``: load
the candidate, switch that replica (atomic, so the requests it answers never
fail), wait for its ``/ready``, then smoke-test it (:func:`conveyor.deploy.smoke_test`,
which must find the candidate serving all of that replica's traffic). The
lock record's weight is the share of replicas switched, so ``conveyor status``
shows how far the rollout got; each replica switched is one ``rolling-step``
ledger line.

The first failure stops the rollout: every replica already switched goes
back to the stable version, the candidate is unloaded where it was loaded,
one ``deploy failed`` ledger line names the replica and the step, and the
command fails (:class:`~conveyor.errors.SmokeTestFailed` for a failed smoke
test, :class:`~conveyor.errors.ServiceError` for a replica that did not
answer). An operator's ``conveyor rollback`` stops it between replicas the same way.
A local environment is a rolling update of one replica: a blue-green switch
smoke-tested in place afterwards.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from conveyor.deploy._controller import ServerClient
from conveyor.deploy._environment import Environment, Progress, record
from conveyor.deploy._ledger import LedgerEntry
from conveyor.deploy._lock import EnvironmentLock
from conveyor.deploy._rollout import stop_if_aborted
from conveyor.deploy._smoke import smoke_test
from conveyor.errors import ConveyorError, ServiceError, SmokeTestFailed

READY_POLL_SECONDS = 0.1
STRATEGY = "rolling"


class _StepFailed(Exception):
    """One replica's step failed; ``smoke`` holds a failed smoke report when that was the cause."""

    def __init__(self, message: str, smoke: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.smoke = smoke


def _wait_ready(client: ServerClient, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not client.ready():
        if time.monotonic() > deadline:
            raise _StepFailed(f"did not answer /ready within {seconds:g} s after the switch")
        time.sleep(READY_POLL_SECONDS)


def _step(env: Environment, client: ServerClient, candidate: str) -> dict[str, Any]:
    """Load, switch, ready, smoke-test one replica; its smoke report."""
    try:
        if not client.state().loaded(candidate):
            client.load(candidate)
        client.switch(candidate)
    except ConveyorError as exc:
        raise _StepFailed(str(exc)) from exc
    _wait_ready(client, env.project.settings.deploy.health_timeout_seconds)
    smoke = smoke_test(env.project, client.base_url, expect_version=candidate, expect_env=env.name)
    if not smoke.ok:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in smoke.failures())
        raise _StepFailed(f"failed its smoke test: {failed}", smoke=smoke.to_dict())
    return smoke.to_dict()


def _revert(env: Environment, switched: list[ServerClient], stable: str, candidate: str) -> list[str]:
    """Switch ``switched`` back to ``stable`` and unload the candidate; the replicas that refused."""
    stuck = []
    for client in switched:
        try:
            client.switch(stable)
        except ConveyorError:
            stuck.append(client.base_url)
    for client in env.client.clients:
        with contextlib.suppress(ConveyorError):
            client.unload(candidate)
    return stuck


def rolling_rollout(
    env: Environment,
    lock: EnvironmentLock,
    *,
    candidate: str,
    report: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    """Move every replica to ``candidate``, one at a time; stop and revert on the first failure."""
    stable = str(report["previous"])
    clients = env.client.clients
    switched: list[ServerClient] = []
    steps: list[dict[str, Any]] = []
    report["steps"] = steps
    for number, client in enumerate(clients, 1):
        if env.abort_requested():
            _revert(env, switched, stable, candidate)
            stop_if_aborted(env, candidate, report)
        progress(f"replica {number}/{len(clients)} ({client.base_url}): version {candidate}")
        started = time.perf_counter()
        try:
            switched.append(client)
            smoke = _step(env, client, candidate)
        except _StepFailed as exc:
            stuck = _revert(env, switched, stable, candidate)
            back = f"; {', '.join(stuck)} could not be switched back" if stuck else ""
            reason = (
                f"rolling update of version {candidate} stopped at replica {number}/{len(clients)} "
                f"({client.base_url}): {exc}; {len(switched) - len(stuck)} replica(s) back on {stable}{back}"
            )
            details = {"phase": "rolling", "replica": client.base_url, "step": number, "replicas": env.urls}
            record(
                env.project,
                LedgerEntry(env.name, "deploy", "failed", candidate, STRATEGY, reason, details=details),
            )
            failed = {**report, "outcome": "failed", "reason": reason}
            if exc.smoke is not None:
                raise SmokeTestFailed(reason, report={**failed, "smoke": exc.smoke}) from exc
            raise ServiceError(reason, environment=env.name, replica=client.base_url) from exc
        took_ms = (time.perf_counter() - started) * 1000
        steps.append({"replica": client.base_url, "ms": round(took_ms, 1), "smoke": smoke["ok"]})
        lock.update(
            weight=round(100.0 * number / len(clients), 1),
            weight_since=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        record(
            env.project,
            LedgerEntry(
                env.name, "rolling-step", "ok", candidate, STRATEGY,
                f"replica {number}/{len(clients)} ({client.base_url}) serves {candidate}, smoke-tested",
                details={"replica": client.base_url, "step": number},
            ),
        )  # fmt: skip
    reason = (
        f"rolling update: {len(clients)} replica(s) moved from {stable} to {candidate}, each smoke-tested"
    )
    details = {"previous": stable, "replicas": env.urls}
    record(env.project, LedgerEntry(env.name, "deploy", "ok", candidate, STRATEGY, reason, details=details))
    report.update(outcome="ok", reason=reason)
    progress(reason)
    return {**report, "server": env.client.state().to_dict()}
