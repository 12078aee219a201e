"""An operator's hand on a canary: promote it now (``conveyor canary promote``), or abort it.

Promote works like Argo Rollouts' ``kubectl argo rollouts promote --full``: the canary
skips its remaining steps and its candidate takes 100 % of the traffic now.

* **A canary that runs** is another process (``conveyor deploy --strategy canary``, maybe on
  another runner sharing the state store), so promote does not touch its server: it writes
  a request, the state document ``envs/<env>/canary-control``, addressed to the rollout
  that holds the environment's lock (its pid, host and start time) and naming who asked
  and why. The rollout reads it between polls of its analysis window
  (:func:`wait_for_operator`, every ``ABORT_POLL_SECONDS``) and before each step
  (:func:`promote_if_requested`); its own request is taken, the ``promote`` ledger line is
  written (who, why, at which step, the steps skipped) and the candidate is switched to
  100 % — the ``deploy`` line of strategy ``canary`` — as a pass at the last step would;
  the deploy then aligns the aliases and exits 0. A request addressed to another rollout
  is stale (its rollout ended) and is deleted. The promoting command waits (bounded) for
  that ledger line and reports it.
* **A canary whose process was killed** (the lock is free, its record left behind:
  ``conveyor status`` shows it *interrupted*) is finished by promote itself: it takes the
  lock, reaps an orphaned side server, switches to the candidate (loading it first when
  the server was restarted), writes the same two ledger lines and aligns the aliases.
  A canary killed before its first traffic step is not promoted (nothing says its
  candidate passed its smoke test): the next deploy or rollback recovers it.

Nothing to promote (no canary runs or was interrupted) is :class:`NoRolloutRunning`.
Abort (:func:`abort_rollout`) is the rollback during a rollout that
:func:`conveyor.deploy.rollback` already is, refused the same way when nothing runs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from conveyor.deploy._aliases import sync_aliases
from conveyor.deploy._environment import ABORT_POLL_SECONDS, Environment, Progress, quiet, record, recover
from conveyor.deploy._environment import switch as switch_to
from conveyor.deploy._ledger import LedgerEntry, acting, acting_as, current_actor
from conveyor.deploy._lock import EnvironmentLock, LockHolder
from conveyor.deploy._processes import reap_orphan
from conveyor.deploy._rollback import rollback
from conveyor.errors import NoRolloutRunning, OperationError, StateConflict
from conveyor.project import Project

CONTROL_KEY = "canary-control"
PROMOTE = "promote"
PROMOTE_WAIT_SECONDS = (
    120.0  # how long promote waits for the running canary to act (its analysis may be busy)
)
POLL_SECONDS = 0.2
CANARY = "canary"  # the built-in strategy this module acts on (conveyor.deploy_strategies)


def control_key(env_name: str) -> str:
    return f"envs/{env_name}/{CONTROL_KEY}"


def _is_canary(holder: LockHolder | None) -> bool:
    return holder is not None and holder.action == "deploy" and holder.strategy == CANARY


def _target(holder: LockHolder) -> dict[str, Any]:
    return {"pid": holder.pid, "host": holder.host, "started": holder.started, "version": holder.version}


def _skipped(steps: list[int], at: float) -> list[int]:
    return [s for s in steps if at < s < 100]


# -- the canary's side: read the request between polls, promote when it is its own --------------
def promote_request(env: Environment, lock: EnvironmentLock) -> dict[str, Any] | None:
    """The promote request addressed to the rollout holding ``lock``; a stale one is deleted."""
    key = control_key(env.name)
    found = env.store.get(key)
    if found is None:
        return None
    me = lock.holder()
    if me is not None and found.data.get("action") == PROMOTE and found.data.get("target") == _target(me):
        return dict(found.data)
    # addressed to an earlier rollout (it ended); a newer request written meanwhile is kept
    with contextlib.suppress(StateConflict):
        env.store.delete(key, expected=found.version)
    return None


def wait_for_operator(env: Environment, lock: EnvironmentLock, seconds: float) -> bool:
    """Sleep ``seconds``; True as soon as an operator asks to abort or to promote (then earlier)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if env.abort_requested() or promote_request(env, lock) is not None:
            return True
        time.sleep(min(ABORT_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    return env.abort_requested() or promote_request(env, lock) is not None


def promote_if_requested(
    env: Environment,
    lock: EnvironmentLock,
    *,
    candidate: str,
    stable: str,
    steps: list[int],
    report: dict[str, Any],
) -> dict[str, Any] | None:
    """When an operator asked this rollout to promote: do it now and return the deploy's report."""
    request = promote_request(env, lock)
    if request is None:
        return None
    env.store.delete(control_key(env.name))
    me = lock.holder()
    at = float(me.weight or 0.0) if me is not None else 0.0
    with acting_as(str(request.get("by") or "unknown"), str(request.get("why") or "")):
        return _promote(
            env, lock, candidate=candidate, stable=stable, at=at, skipped=_skipped(steps, at),
            request=request, report=report,
        )  # fmt: skip


def _promote(
    env: Environment,
    lock: EnvironmentLock,
    *,
    candidate: str,
    stable: str | None,
    at: float,
    skipped: list[int],
    request: dict[str, Any],
    report: dict[str, Any],
    note: str = "",
) -> dict[str, Any]:
    """The promote ledger line, then the switch to 100 % (its ``deploy`` line); inside acting_as."""
    who = (acting() or (current_actor(), ""))[0]
    rest = f"; steps {', '.join(f'{s} %' for s in skipped)} skipped" if skipped else ""
    reason = f"promoted by hand at {at:g} % by {who}{note}{rest}"
    details = {"step": at, "skipped": skipped, "stable": stable, "request": request.get("id"),
               "requested_by": {k: request.get(k) for k in ("pid", "host", "time")}}  # fmt: skip
    record(env.project, LedgerEntry(env.name, PROMOTE, "ok", candidate, CANARY, reason, details=details))
    report["reason"] = reason
    state, switch_ms = switch_to(env, env.client.state(), candidate, CANARY, report)
    lock.update(weight=100.0, weight_since=datetime.now(UTC).isoformat(timespec="seconds"))
    report["promoted"] = {"by": who, "step": at, "skipped": skipped}
    return {**report, "switch_ms": switch_ms, "server": state.to_dict()}


# -- the operator's side ----------------------------------------------------------------------
def promote_canary(project: Project, env_name: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Promote the canary of ``env_name`` to 100 % now: the running one by request, a killed one here.

    Who and why come from :func:`conveyor.deploy.acting_as` (the CLI's ``--why``, the page's form).
    """
    env = Environment.open(project, env_name)
    lock = env.lock(PROMOTE, strategy=CANARY)
    holder = lock.probe()
    if holder is not None:
        if not _is_canary(holder):
            raise NoRolloutRunning(
                f"no canary is running in {env_name!r}: {holder.describe()} holds it; nothing to promote",
                environment=env_name,
            )
        return _ask_running(env, lock, holder, progress)
    left = lock.interrupted()
    if _is_canary(left) and left is not None and left.weight is not None:
        return _finish_killed(env, left, progress)
    if _is_canary(left) and left is not None:
        raise NoRolloutRunning(
            f"the canary of version {left.version} in {env_name!r} was killed before its first traffic "
            "step: nothing to promote (the next deploy or rollback recovers it)",
            environment=env_name,
        )
    raise NoRolloutRunning(f"no canary is running in {env_name!r}: nothing to promote", environment=env_name)


def _request(holder: LockHolder) -> dict[str, Any]:
    who, why = acting() or (current_actor(), "")
    return {
        "action": PROMOTE, "id": uuid.uuid4().hex, "by": who, "why": why, "pid": os.getpid(),
        "host": socket.gethostname(), "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "target": _target(holder),
    }  # fmt: skip


def _ask_running(
    env: Environment, lock: EnvironmentLock, holder: LockHolder, progress: Progress
) -> dict[str, Any]:
    """Write the request, then wait (bounded) for the rollout's promote line or for its end."""
    ledger = env.ledger()
    seen = ledger.store.read(ledger.log)
    after = seen[-1].id if seen else 0
    request = _request(holder)
    env.store.put(control_key(env.name), request)
    progress(f"asked the canary of version {holder.version} (pid {holder.pid}) to promote now")
    promoted: LedgerEntry | None = None
    ended: LedgerEntry | None = None
    deadline = time.monotonic() + PROMOTE_WAIT_SECONDS
    while ended is None and time.monotonic() < deadline:
        gone = lock.probe() is None  # before reading: an end line written before the release is read
        for found in ledger.store.read(ledger.log, after=after):
            after = found.id
            entry = LedgerEntry.from_dict(found.data)
            if entry.environment != env.name or entry.version != holder.version:
                continue
            if entry.action == PROMOTE and entry.details.get("request") == request["id"]:
                promoted = entry
            elif entry.action in ("deploy", "interrupted") and entry.strategy == CANARY:
                ended = entry
        if ended is None and gone:
            break  # the rollout is gone without an end line: killed
        if ended is None:
            time.sleep(POLL_SECONDS)
    report: dict[str, Any] = {"environment": env.name, "version": holder.version, "canary_pid": holder.pid}
    if promoted is not None:  # the switch follows it in the same process
        progress(promoted.reason)
        details = promoted.details
        return {**report, "outcome": "promoted", "reason": promoted.reason, "step": details.get("step"),
                "skipped": details.get("skipped"), "server": env.client.state().to_dict()}  # fmt: skip
    if ended is None and lock.probe() is not None:
        reason = (
            f"the canary (pid {holder.pid}) has not acted on the request after {PROMOTE_WAIT_SECONDS:g} s; "
            "the request stands: it promotes at its next check"
        )
        return {**report, "outcome": "requested", "reason": reason}
    _withdraw(env, request["id"])
    left = lock.interrupted()
    killed = ended is None and _is_canary(left) and left is not None and left.pid == holder.pid
    if killed and left is not None and left.weight is not None:
        progress(f"the canary (pid {holder.pid}) was killed before it acted; finishing it here")
        return _finish_killed(env, left, progress)
    if ended is not None and ended.action == "deploy" and ended.outcome == "ok":
        reason = (
            f"the canary promoted version {holder.version} itself before it saw the request: {ended.reason}"
        )
        return {**report, "outcome": "promoted", "reason": reason, "server": env.client.state().to_dict()}
    how = f"{ended.outcome}: {ended.reason}" if ended is not None else "it stopped"
    raise OperationError(
        f"the canary of version {holder.version} ended before it saw the promote ({how})",
        environment=env.name,
    )


def _withdraw(env: Environment, request_id: str) -> None:
    key = control_key(env.name)
    found = env.store.get(key)
    if found is not None and found.data.get("id") == request_id:
        with contextlib.suppress(StateConflict):  # taken by the canary meanwhile
            env.store.delete(key, expected=found.version)


def _steps_of(env: Environment, dead: LockHolder) -> list[int]:
    """The killed canary's steps: its command's ``--steps``, else ``deploy.canary.steps``."""
    words = dead.command.split()
    if "--steps" in words and words.index("--steps") + 1 < len(words):
        try:
            return [int(s) for s in words[words.index("--steps") + 1].split(",") if s]
        except ValueError:
            pass
    return list(env.project.settings.deploy.canary.steps)


def _finish_killed(env: Environment, left: LockHolder, progress: Progress) -> dict[str, Any]:
    """Take the lock of a killed canary and promote its candidate here."""
    candidate = str(left.version)
    lock = env.lock(PROMOTE, version=candidate, strategy=CANARY)
    lock.acquire()
    try:
        dead = lock.taken_over
        weight = dead.weight if dead is not None and _is_canary(dead) and dead.pid == left.pid else None
        if dead is None or weight is None:
            recover(env, lock, progress)  # something else was left behind: put right as any deploy would
            raise NoRolloutRunning(
                f"no canary is running in {env.name!r}: nothing to promote", environment=env.name
            )
        lock.update(command=f"conveyor canary promote --env {env.name}", stable=dead.stable)
        orphan = reap_orphan(env.process.side_server_file)
        env.clear_abort()
        state = env.ensure_server(progress)
        if not state.loaded(candidate):
            progress(f"loading version {candidate} (the server was restarted)")
            env.client.load(candidate)
        progress(f"the canary of {candidate} (pid {dead.pid}) was killed at {weight:g} %; promoting it")
        report: dict[str, Any] = {"environment": env.name, "strategy": CANARY, "version": candidate,
                                  "previous": dead.stable, "interrupted": dead.describe()}  # fmt: skip
        if orphan is not None:
            report["orphan_stopped"] = orphan.pid
        note = f" (its canary, pid {dead.pid}, was killed)"
        done = _promote(
            env, lock, candidate=candidate, stable=dead.stable, at=weight,
            skipped=_skipped(_steps_of(env, dead), weight), request={"pid": os.getpid(),
            "host": socket.gethostname(), "time": datetime.now(UTC).isoformat(timespec="milliseconds")},
            report=report, note=note,
        )  # fmt: skip
    finally:
        lock.release()
    entry = sync_aliases(env.project, env.name, attempts=3)
    if entry is not None:
        done["aliases"] = {"outcome": entry.outcome, "reason": entry.reason}
    return {
        **done,
        "outcome": "promoted",
        "step": done["promoted"]["step"],
        "skipped": done["promoted"]["skipped"],
    }


def abort_rollout(project: Project, env_name: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Stop the rollout running in ``env_name`` (or put back one that was killed): a rollback."""
    env = Environment.open(project, env_name)
    lock = env.lock("abort")
    running = lock.probe() or lock.interrupted()
    if running is None or running.action != "deploy":
        raise NoRolloutRunning(
            f"no rollout is running in {env_name!r}: nothing to abort", environment=env_name
        )
    return rollback(project, env_name, progress=progress).to_dict()
