"""One environment as the deploy commands see it, and the recovery of an interrupted rollout.

:class:`Environment` bundles the settings, the supervised process (a local
environment) and the admin client of its replicas (:class:`~conveyor.deploy._fleet.FleetClient`:
the local server is a fleet of one; replicas given by URL are never started,
stopped or supervised by Conveyor). :func:`recover` runs under the lock of every deploy and
rollback: when the previous holder died (``kill -9`` at any point), it reaps
the side server that holder may have left, puts a candidate's share back to
0 % (or switches back to what the ledger says should serve), writes one
``interrupted`` ledger entry and has the registry aliases re-aligned — so an
interrupted rollout is never left half-way.

An operator stops a running rollout with ``conveyor rollback``: it writes the
environment's abort request (the state document ``envs/<env>/abort-request``, seen by
a rollout on any runner sharing the store) and switches traffic
back itself; the rollout sees the request within a fraction of a second and
stops (:func:`abort_requested`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from conveyor.config import env_flag
from conveyor.deploy._aliases import spawn_alias_sync
from conveyor.deploy._controller import ServerClient, ServerState
from conveyor.deploy._fleet import FleetClient
from conveyor.deploy._ledger import Ledger, LedgerEntry
from conveyor.deploy._lock import EnvironmentLock
from conveyor.deploy._processes import reap_orphan
from conveyor.deploy._supervisor import EnvironmentProcess
from conveyor.errors import ConveyorError, StateStoreError
from conveyor.project import Project
from conveyor.state import StateStore, open_store

Progress = Callable[[str], None]
DIRECT = "direct"
PRODUCTION = "production"
PREVIOUS_ALIAS = "previous"
AB_KEY = "ab"  # envs/<env>/ab: the running A/B test's plan (in the local folder, envs/<env>/ab.json)
ABORT_KEY = "abort-request"
ABORT_POLL_SECONDS = 0.1


def quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class Environment:
    """One environment: its settings, its supervised process and its admin client."""

    project: Project
    name: str
    process: EnvironmentProcess
    client: FleetClient

    @classmethod
    def open(cls, project: Project, name: str) -> Environment:
        process = EnvironmentProcess(project, name)
        settings = process.settings  # a UsageError listing the environments when unknown
        identity = project.settings.project.identity
        if settings.remote:
            var = settings.admin_token_env or project.settings.serving.admin_token_env
            token = env_flag(var) if var else None
            clients = [
                ServerClient(url, token, environment=name, project_id=identity, token_env=var)
                for url in settings.replica_urls()
            ]
        else:
            token = process.token() if project.settings.serving.admin_token_env else None
            clients = [ServerClient(process.base_url, token, environment=name, project_id=identity)]
        return cls(project, name, process, FleetClient(clients, environment=name))

    @property
    def remote(self) -> bool:
        """Replicas given by URL: Conveyor drives them over HTTP and never starts or stops them."""
        return self.process.settings.remote

    @property
    def urls(self) -> list[str]:
        return self.client.urls

    def running(self) -> bool:
        """A local server whose process runs and answers; replicas by URL are assumed running
        (a replica that does not answer fails the command that calls it, naming it)."""
        return True if self.remote else self.process.running()

    def lock(
        self, action: str, *, version: str | None = None, strategy: str | None = None
    ) -> EnvironmentLock:
        return EnvironmentLock(
            open_store(self.project), self.name, action, version=version, strategy=strategy
        )

    @property
    def store(self) -> StateStore:
        return open_store(self.project)

    # -- the running A/B test's plan: the document envs/<env>/ab -------------------------------
    @property
    def ab_key(self) -> str:
        return f"envs/{self.name}/{AB_KEY}"

    def ab_plan(self) -> dict[str, Any] | None:
        """The plan of the A/B test running here, or None."""
        found = self.store.get(self.ab_key)
        return None if found is None else found.data

    def start_ab_plan(self, plan: dict[str, Any]) -> None:
        """Record ``plan`` as the running test; a StateConflict when another test was recorded first."""
        self.store.put(self.ab_key, plan, expected=None)

    def end_ab_plan(self, how: str) -> bool:
        """Keep the running plan as ``<id>.concluded`` / ``ab.aborted``; False when none runs."""
        plan = self.ab_plan()
        if plan is None:
            return False
        target = f"{plan.get('id', AB_KEY)}.concluded" if how == "concluded" else f"{AB_KEY}.{how}"
        return self.store.move(self.ab_key, f"envs/{self.name}/{target}")

    def ledger(self) -> Ledger:
        return Ledger.of(self.project)

    def ensure_server(self, progress: Progress) -> ServerState:
        """The server's state, starting the server (and its watchdog) first when it is not running.

        A server started here serves what the ledger says the environment serves
        (the registry alias may lag behind a rollback by the seconds its update takes).
        Replicas given by URL are only read: each one must answer.
        """
        if self.remote:
            return self.client.state()
        if not self.process.running():
            progress(f"starting the {self.name} server on {self.process.base_url}")
            self.process.token_env()  # a UsageError when the admin API is switched off
            expected = self.ledger().serving(self.name)
            self.process.start(wait_path="/health", version=expected.primary if expected else None)
        self.process.ensure_watchdog()
        return self.client.state()

    # -- an operator's abort request -------------------------------------------------------
    @property
    def abort_key(self) -> str:
        return f"envs/{self.name}/{ABORT_KEY}"

    def request_abort(self, by: str) -> None:
        payload = {"by": by, "pid": os.getpid(), "time": datetime.now(UTC).isoformat()}
        self.store.put(self.abort_key, payload)

    def abort_requested(self) -> bool:
        return self.store.get(self.abort_key) is not None

    def clear_abort(self) -> None:
        self.store.delete(self.abort_key)

    def wait_unless_aborted(self, seconds: float) -> bool:
        """Sleep ``seconds``; True as soon as an abort is requested (then earlier)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.abort_requested():
                return True
            time.sleep(min(ABORT_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        return self.abort_requested()


def record(project: Project, entry: LedgerEntry) -> LedgerEntry:
    return Ledger.of(project).append(entry)


def recover(env: Environment, lock: EnvironmentLock, progress: Progress) -> dict[str, Any] | None:
    """After an interrupted deploy or rollback: orphans reaped, traffic put right, one ledger entry.

    A deploy killed before its ledger entry is reverted (candidate share to 0 %,
    or switched back to the ledger's version); a rollback killed after its switch
    but before its entry is completed (the entry is written).
    """
    orphan = reap_orphan(env.process.side_server_file)
    dead = lock.taken_over
    if dead is None:
        if orphan is not None:
            progress(f"stopped an orphaned side server (pid {orphan.pid})")
        return None
    progress(f"a previous {dead.describe()} was interrupted; recovering")
    done: dict[str, Any] = {"interrupted": dead.describe()}
    if dead.command:
        done["command"] = dead.command
    if dead.weight is not None:
        done["weight"] = dead.weight
    if orphan is not None:
        done["orphan_stopped"] = orphan.pid
    env.clear_abort()
    expected = env.ledger().serving(env.name)
    if env.running():
        state = env.client.state()
        if state.candidates and env.ab_plan() is None:
            state = env.client.rollback()
            done["candidate_traffic"] = "back to 0"
        if expected is not None and state.primary != expected.primary:
            if dead.action == "rollback":
                done["completed"] = f"the rollback to {state.primary}"
                _complete_rollback(env, state, dead.describe())
            elif state.loaded(expected.primary):
                state = env.client.switch(expected.primary)
                done["reverted_to"] = expected.primary
        done["serving"] = state.primary
    record(
        env.project,
        LedgerEntry(
            env.name,
            "interrupted",
            "interrupted",
            version=dead.version,
            strategy=dead.strategy,
            reason=f"{dead.describe()} did not finish; recovered by pid {os.getpid()}",
            details=done,
        ),
    )
    spawn_alias_sync(env.project, env.name)
    return done


def switch(
    env: Environment, state: ServerState, candidate: str, how: str, report: dict[str, Any]
) -> tuple[ServerState, float]:
    """The atomic switch to ``candidate``, then its ledger line (before the registry is touched).

    The two go together: when the ledger line cannot be written (the state store died between
    them), the servers are switched back before the error is raised — production never serves a
    version the ledger does not name.
    """
    previous = state.primary
    started = time.perf_counter()
    if state.primary != candidate or state.share(candidate) < 1.0:
        state = env.client.switch(candidate)
    switch_ms = (time.perf_counter() - started) * 1000
    if previous in (None, candidate):  # the first deploy: the server started with the candidate
        said = f"serves version {candidate} (no other version was serving)"
    else:
        said = f"switched from {previous} to {candidate}"
    reason = report.get("reason") or said
    details: dict[str, Any] = {"previous": previous, "switch_ms": round(switch_ms, 1)}
    if len(env.client) > 1:
        details["replicas"] = env.urls
    try:
        record(env.project, LedgerEntry(env.name, "deploy", "ok", candidate, how, reason, details=details))
    except StateStoreError as exc:
        raise store_lost(env, exc, candidate, previous) from None
    report.update(outcome="ok", reason=reason, switch_ms=switch_ms)
    return state, switch_ms


def restore(env: Environment, previous: str | None, candidate: str) -> str:
    """Put the servers back as they were before a rollout of ``candidate``: no candidate traffic,
    ``previous`` the primary again, the candidate unloaded where it has no traffic. What serves now,
    in words (the servers are reached over HTTP: this works while the state store is down)."""
    try:
        state = env.client.state()
        if state.candidates:
            state = env.client.rollback()  # a canary's or an A/B variant's share back to 0 %
        if previous is not None and state.primary != previous and state.loaded(previous):
            state = env.client.switch(previous)
        if state.primary != candidate and state.loaded(candidate):
            with contextlib.suppress(ConveyorError):
                state = env.client.unload(candidate)
    except ConveyorError as exc:
        return f"{env.name} could not be checked ({exc})"
    if state.primary is None:
        return f"{env.name} serves no version (its replicas disagree; run `conveyor status`)"
    return f"{env.name} serves version {state.primary}"


def store_lost(
    env: Environment, exc: StateStoreError, candidate: str, previous: str | None
) -> StateStoreError:
    """The state store failed in the middle of a rollout: the servers put back (:func:`restore`),
    and one line saying so. Nothing more can be recorded; the lock's record stays in the store, so
    the next deploy or rollback finds the rollout interrupted and records it (:func:`recover`)."""
    serving = restore(env, previous, candidate)
    return StateStoreError(
        f"{exc}; the deploy of version {candidate} stopped and {serving}",
        **{**exc.context, "environment": env.name, "version": candidate, "servers_restored": True},
    )


def _complete_rollback(env: Environment, state: ServerState, what: str) -> None:
    reason = f"{what} switched to {state.primary} before it was killed; recorded by its recovery"
    entry = LedgerEntry(
        env.name, "rollback", "ok", state.primary, None, reason, details={"previous": state.previous}
    )
    record(env.project, entry)
