"""``conveyor rollback``: traffic back first, bookkeeping after.

The order is what makes a rollback instant: the admin call that moves the
traffic comes first, then the ledger line (one atomic append), then the
command returns; the registry aliases follow in a detached, retried step
(:func:`conveyor.deploy._aliases.spawn_alias_sync`). MLflow is never on the
path between the operator and the switch.

A rollback always has a target when one is known anywhere:

* a candidate with traffic (canary, A/B) → its share goes back to 0 %;
* the server's own previous version, when loaded → switch back to it;
* after a server restart the server knows no previous version: the ledger
  does (:meth:`conveyor.deploy.Ledger.serving`), and the watchdog preloads it
  on restart, so the switch stays instant (it is loaded from the registry when
  it is not).

During a running rollout (another command holds the lock) a rollback stops
it: it writes the abort request, moves the traffic back itself, and waits a
bounded time for the rollout to notice and exit.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

from conveyor.deploy._aliases import spawn_alias_sync
from conveyor.deploy._controller import ServerState
from conveyor.deploy._environment import Environment, Progress, quiet, record, recover
from conveyor.deploy._ledger import LedgerEntry
from conveyor.deploy._lock import EnvironmentLock, LockHolder
from conveyor.deploy._results import DeployResult
from conveyor.errors import DeployConflict, StateStoreError, UsageError
from conveyor.project import Project

ABORT_WAIT_SECONDS = 15.0  # how long a rollback waits for the rollout it aborted to stop
POLL_SECONDS = 0.1


def rollback(project: Project, env_name: str, *, progress: Progress = quiet) -> DeployResult:
    """Switch ``env_name`` back to its previous version, or stop a running rollout."""
    return DeployResult.from_report(_rollback_or_abort(project, env_name, progress))


def _rollback_or_abort(project: Project, env_name: str, progress: Progress) -> dict[str, Any]:
    env = Environment.open(project, env_name)
    unreachable: list[str] = []
    if env.remote and len(env.client) > 1:
        client, unreachable = env.client.answering()
        if unreachable:
            progress(f"rolling back the replicas that answer; not answering: {', '.join(unreachable)}")
            env = replace(env, client=client)
    lock = env.lock("rollback")
    try:
        lock.acquire()
    except DeployConflict:
        holder = lock.holder()
        if holder is None or holder.action != "deploy":
            raise
        report = _abort_rollout(env, lock, holder, progress)
        return {**report, "unreachable": unreachable} if unreachable else report
    try:
        lock.update(command=f"conveyor rollback --env {env_name}")
        report = _rollback(env, lock, progress, unreachable)
    except BaseException:
        lock.release_after_error()
        raise
    lock.release()
    env.process.ensure_watchdog()
    return report


def _rollback(
    env: Environment, lock: EnvironmentLock, progress: Progress, unreachable: list[str]
) -> dict[str, Any]:
    recovered = recover(env, lock, progress)
    if not env.running() and env.process.watchdog() is not None:
        progress(f"the {env.name} server is down and its watchdog restarts it; waiting")
        env.process.wait("/ready")
    if not env.running():
        raise UsageError(f"the {env.name} server is not running: nothing to roll back")
    before = env.client.state()
    started = time.perf_counter()
    if recovered and "candidate_traffic" in recovered:
        # recovering already put the interrupted candidate back to 0 %: do not roll back twice
        state = before
        reason = f"the interrupted deploy's candidate is back to 0 %; {state.primary} serves all traffic"
    elif before.candidates:
        state = env.client.rollback()
        reason = f"candidate {', '.join(before.candidates)} back to 0 %; {state.primary} serves all traffic"
        env.end_ab_plan("aborted")
    else:
        state = _switch_back(env, before, progress)
        reason = f"switched back from {before.primary} to {state.primary}"
    switch_ms = (time.perf_counter() - started) * 1000
    progress(f"{reason} ({switch_ms:.1f} ms)")
    details: dict[str, Any] = {"previous": state.previous, "switch_ms": round(switch_ms, 1)}
    if len(env.client) > 1 or unreachable:
        details["replicas"] = env.urls
    if unreachable:
        details["unreachable"] = unreachable
        reason += f" ({len(unreachable)} replica(s) did not answer: {', '.join(unreachable)})"
    entry = LedgerEntry(env.name, "rollback", "ok", state.primary, None, reason, details=details)
    try:
        record(env.project, entry)
    except StateStoreError as exc:
        # the switch stands (the operator asked for the old version back); the lock's record stays
        # in the store, and the next deploy or rollback writes this line (recover)
        raise StateStoreError(
            f"{exc}; the rollback itself is done: {env.name} serves version {state.primary} "
            "(the next deploy or rollback writes its ledger line)",
            **exc.context,
        ) from None
    spawn_alias_sync(env.project, env.name)
    report = {"environment": env.name, "outcome": "ok", "reason": reason, "switch_ms": switch_ms}
    if unreachable:
        report["unreachable"] = unreachable
    if recovered:
        report["recovered"] = recovered
    return {**report, "aliases": "updating in the background", "server": state.to_dict()}


def _switch_back(env: Environment, before: ServerState, progress: Progress) -> ServerState:
    """To the server's previous version when loaded, else to the ledger's (loaded first if needed)."""
    if before.previous is not None and before.loaded(before.previous):
        return env.client.rollback()
    expected = env.ledger().serving(env.name)
    target = expected.previous if expected is not None and expected.primary == before.primary else None
    if target is None and expected is not None and expected.primary != before.primary:
        target = expected.primary  # the server serves what the ledger never recorded
    if target is None or target == before.primary:
        raise UsageError(
            f"nothing to roll back to: {env.name} serves {before.primary or 'nothing'} and neither "
            "the server nor the ledger knows an earlier version"
        )
    if not before.loaded(target):
        progress(f"loading version {target} from the registry (the server was restarted)")
        env.client.load(target)
    return env.client.switch(target)


def _abort_rollout(
    env: Environment, lock: EnvironmentLock, holder: LockHolder, progress: Progress
) -> dict[str, Any]:
    """Stop the running rollout ``holder``: abort request, traffic back now, wait for it to stop."""
    env.request_abort(by=f"conveyor rollback (pid {os.getpid()})")
    started = time.perf_counter()
    state = env.client.state()
    if state.candidates:
        state = env.client.rollback()
    elif holder.stable and state.primary != holder.stable and state.loaded(holder.stable):
        state = env.client.switch(holder.stable)
    switch_ms = (time.perf_counter() - started) * 1000
    progress(f"traffic back on {state.primary} ({switch_ms:.1f} ms); stopping the {holder.describe()}")
    deadline = time.monotonic() + ABORT_WAIT_SECONDS
    while lock.probe() is not None and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    stopped = lock.probe() is None
    reason = f"stopped the running {holder.describe()}; {state.primary} serves all traffic"
    if not stopped:
        reason += f" (the rollout had not exited after {ABORT_WAIT_SECONDS:g} s; its abort request stands)"
    # written after the rollout stopped, so this line comes after any line the rollout wrote last
    details = {"previous": state.previous, "switch_ms": round(switch_ms, 1), "aborted": holder.describe()}
    record(env.project, LedgerEntry(env.name, "rollback", "ok", state.primary, None, reason, details=details))
    spawn_alias_sync(env.project, env.name)
    return {
        "environment": env.name,
        "outcome": "ok",
        "reason": reason,
        "switch_ms": switch_ms,
        "aborted": holder.describe(),
        "stopped": stopped,
        "server": env.client.state().to_dict(),
    }
