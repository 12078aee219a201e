"""Deployment strategies as a registry: how ``conveyor deploy`` moves an environment to a version.

A strategy is an object registered in the entry-point group ``conveyor.deploy_strategies``
(:data:`conveyor.extensions.DEPLOYMENT_STRATEGIES`); Conveyor's own four are declared in its
pyproject.toml exactly as a plugin package declares its own (docs/extending.md). ``--strategy``,
``deploy.strategy`` and the JSON Schema list the registered names (``direct``, the plain switch
outside production, is not a ``deploy.strategy`` value).

What every strategy shares stays in :func:`conveyor.deploy._strategies.deploy`: the lock, recovery
of an interrupted rollout, the smoke test of the candidate on a side server, the ledger, the
registry aliases. A strategy decides only how traffic moves once the candidate passed its smoke
test (:meth:`DeployStrategy.roll_out`, given a :class:`Rollout`); :meth:`Rollout.switch` is the
two-phase blue-green switch every strategy can end with.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from conveyor.deploy._controller import ServerState
from conveyor.deploy._environment import Environment, Progress, record, switch
from conveyor.deploy._ledger import LedgerEntry
from conveyor.deploy._lock import EnvironmentLock
from conveyor.deploy._rolling import rolling_rollout
from conveyor.deploy._rollout import canary_rollout, stop_if_aborted
from conveyor.errors import ConveyorError, ServiceError, UsageError
from conveyor.extensions import DEPLOYMENT_STRATEGIES
from conveyor.project import Project

T = TypeVar("T")


@dataclass
class Rollout:
    """One deploy under the environment's lock, after the candidate passed its smoke test."""

    env: Environment
    lock: EnvironmentLock
    state: ServerState  # what the servers report now
    candidate: str
    previous: str | None  # the version serving all traffic before (None: the first deploy)
    strategy: str
    report: dict[str, Any]  # the deploy's result so far; a strategy adds its keys and returns it
    steps: list[int] | None  # from DeployStrategy.prepare
    interval: float | None  # --interval
    progress: Progress
    final_state: ServerState | None = None  # set by switch(): reported as the result's "server"

    def switch(self) -> dict[str, Any]:
        """Load the candidate on every replica, then switch every replica to it (blue-green); a
        replica failing either phase leaves every replica on — or back on — the previous version."""
        env, candidate = self.env, self.candidate
        replicas = f" on {len(env.client)} replicas" if len(env.client) > 1 else ""
        self.progress(f"loading version {candidate} beside {self.previous or 'nothing'}{replicas}")
        started = time.perf_counter()
        state = self.state
        if not state.loaded(candidate):
            state = self._phase("load", lambda: env.client.load(candidate))
        self.report["load_ms"] = (time.perf_counter() - started) * 1000
        stop_if_aborted(env, candidate, self.report)
        self.lock.confirm_held()  # still ours (a restarted state store drops its sessions' locks)
        loaded = state
        state, switch_ms = self._phase(
            "switch", lambda: switch(env, loaded, candidate, self.strategy, self.report)
        )
        self.progress(
            f"version {candidate} serves all traffic in {env.name}{replicas} (switch {switch_ms:.1f} ms)"
        )
        self.final_state = state
        return self.report

    def _phase(self, phase: str, call: Callable[[], T]) -> T:
        """One phase of the switch across the replicas; a failure is one ``deploy failed`` ledger line
        naming the phase and the replica, with the candidate unloaded where it could be, then raised.

        The fleet has already switched back every replica it had switched (``FleetClient.switch``).
        """
        env = self.env
        try:
            return call()
        except ServiceError as exc:
            replica = exc.context.get("replica") or env.client.base_url
            reason = (
                f"{phase} phase failed on replica {replica}: {exc}; "
                f"every replica stays on {self.previous or 'what it served'}"
            )
            for client in env.client.clients:
                # where it was loaded and has no traffic; a replica that is down holds nothing
                with contextlib.suppress(ConveyorError):
                    client.unload(self.candidate)
            details = {"phase": phase, "replica": replica, "replicas": env.urls}
            failed = LedgerEntry(
                env.name, "deploy", "failed", self.candidate, self.strategy, reason, details=details
            )
            record(env.project, failed)
            raise ServiceError(reason, environment=env.name, replica=replica, phase=phase) from exc


@runtime_checkable
class DeployStrategy(Protocol):
    """One registered deployment strategy.

    - ``smoke_test``: smoke-test the candidate on a side server before it gets traffic outside
      production too (production always does);
    - ``prepare``: check the strategy's options before the lock is taken, and return the steps
      it will use (``--steps`` or the configuration; None: it has none);
    - ``roll_out``: move traffic to ``rollout.candidate`` and return ``rollout.report`` with what
      happened; raise a ConveyorError (after recording it in the ledger) when it stops.
    """

    @property
    def smoke_test(self) -> bool: ...

    def prepare(self, project: Project, steps: list[int] | None) -> list[int] | None: ...

    def roll_out(self, rollout: Rollout) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Switch:
    """``direct`` (no smoke test outside production) and ``blue-green``: load, then switch at once."""

    smoke_test: bool

    def prepare(self, project: Project, steps: list[int] | None) -> list[int] | None:
        return None

    def roll_out(self, rollout: Rollout) -> dict[str, Any]:
        return rollout.switch()


@dataclass(frozen=True)
class Canary:
    """Traffic in steps, each analysed against the previous version (conveyor.deploy._rollout)."""

    smoke_test: bool = True

    def prepare(self, project: Project, steps: list[int] | None) -> list[int] | None:
        """The canary's steps; a canary with no step below 100 % would promote unanalysed: refused."""
        chosen = steps or project.settings.deploy.canary.steps
        if not any(step < 100 for step in chosen):
            given = "--steps" if steps else "deploy.canary.steps"
            raise UsageError(
                f"{given} {','.join(map(str, chosen))}: a canary needs a step below 100 % to analyse "
                "before it promotes (e.g. 10,50,100); use --strategy blue-green to switch at once"
            )
        return chosen

    def roll_out(self, rollout: Rollout) -> dict[str, Any]:
        r, steps = rollout, rollout.steps
        if r.previous is None or steps is None:
            return r.switch()  # nothing to compare with: the first deploy switches
        return canary_rollout(
            r.env, r.lock, state=r.state, candidate=r.candidate, report=r.report, steps=steps,
            interval=r.interval, progress=r.progress,
        )  # fmt: skip


@dataclass(frozen=True)
class Rolling:
    """Replica by replica (conveyor.deploy._rolling)."""

    smoke_test: bool = True

    def prepare(self, project: Project, steps: list[int] | None) -> list[int] | None:
        return None

    def roll_out(self, rollout: Rollout) -> dict[str, Any]:
        if rollout.previous is None:
            return rollout.switch()
        r = rollout
        return rolling_rollout(r.env, r.lock, candidate=r.candidate, report=r.report, progress=r.progress)


DIRECT = Switch(smoke_test=False)
BLUE_GREEN = Switch(smoke_test=True)
CANARY = Canary()
ROLLING = Rolling()


def deploy_strategy(name: str) -> DeployStrategy:
    """The strategy registered as ``name``; ExtensionError in one line if none is, or it is broken."""
    found: DeployStrategy = DEPLOYMENT_STRATEGIES.load_as(
        name, DeployStrategy, "needs smoke_test, prepare(), roll_out()"
    )
    return found


__all__ = ["BLUE_GREEN", "CANARY", "DIRECT", "ROLLING", "DeployStrategy", "Rollout", "deploy_strategy"]
