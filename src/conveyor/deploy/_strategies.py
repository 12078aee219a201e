"""Deployment strategies: direct (staging), blue-green, canary and rolling.

An environment is one or more replicas (:mod:`conveyor.deploy._fleet`); every
strategy runs the same code for one replica or several. Blue-green is two
phases: load (and warm) the candidate on every replica, then switch every
replica; a replica that fails either phase aborts the rollout and every
replica stays on — or is switched back to — the old version. Rolling
(:mod:`conveyor.deploy._rolling`) goes replica by replica.

Every strategy runs under the environment's lock, talks to the server over
HTTP (:mod:`conveyor.deploy._controller`) and appends what happened to the
ledger. Aliases follow the ledger: the environment's alias (``staging``,
``production``) names the version serving all traffic, ``previous`` the one
a rollback returns to (:mod:`conveyor.deploy._aliases`).

Safety: every route to production — direct, blue-green and canary, the first
deploy included — smoke-tests the candidate on a side server first. Nothing
changes what production serves before the final atomic switch (blue-green)
or before a traffic step (canary), and the ledger line is written right after
the switch, before the registry is touched. A controller killed mid-deploy
leaves the server as it was at its last admin call; the next deploy or
rollback recovers (:func:`conveyor.deploy._environment.recover`). Rollback
lives in :mod:`conveyor.deploy._rollback`, the canary's steps in
:mod:`conveyor.deploy._rollout`.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.config import DEPLOY_STRATEGIES, NOT_BUILT_STRATEGIES, Strategy
from conveyor.deploy._aliases import sync_aliases
from conveyor.deploy._controller import ServerState
from conveyor.deploy._environment import (
    DIRECT,
    PREVIOUS_ALIAS,
    PRODUCTION,
    Environment,
    Progress,
    quiet,
    record,
    recover,
    switch,
)
from conveyor.deploy._ledger import Ledger, LedgerEntry
from conveyor.deploy._results import DeployResult
from conveyor.deploy._rolling import rolling_rollout
from conveyor.deploy._rollout import canary_rollout, stop_if_aborted
from conveyor.deploy._smoke import smoke_test
from conveyor.deploy._supervisor import SideServer
from conveyor.deploy._versions import alias_version, check_version, latest_version, set_alias
from conveyor.errors import ConveyorError, DeployConflict, ServiceError, SmokeTestFailed, UsageError
from conveyor.project import Project

SMOKE_WARM_UP = 5  # untimed requests to the freshly started side server before its smoke test

__all__ = [
    "PRODUCTION",
    "Environment",
    "Progress",
    "align_aliases",
    "deploy",
    "promote",
    "quiet",
    "record",
    "recover",
    "resolve_strategy",
]


def align_aliases(env: Environment, state: ServerState) -> None:
    if state.primary is not None and alias_version(env.project, env.name) != state.primary:
        set_alias(env.project, env.name, state.primary)
    previous = state.previous
    if (
        previous is not None
        and env.name == PRODUCTION
        and alias_version(env.project, PREVIOUS_ALIAS) != previous
    ):
        set_alias(env.project, PREVIOUS_ALIAS, previous)


def _expire_previous(env: Environment, state: ServerState, progress: Progress) -> ServerState:
    """Unload idle versions, keeping ``previous`` for ``deploy.keep_previous_hours``."""
    keep = timedelta(hours=env.project.settings.deploy.keep_previous_hours)
    switched = _last_switch(env)
    for served in state.versions:
        if served.share > 0 or served.version in (state.primary,):
            continue
        if served.version == state.previous and (switched is None or datetime.now(UTC) - switched < keep):
            continue
        progress(f"unloading idle version {served.version}")
        state = env.client.unload(served.version)
    return state


def _last_switch(env: Environment) -> datetime | None:
    for entry in reversed(Ledger.of(env.project).entries(env.name)):
        if entry.action in ("deploy", "rollback", "ab-conclude") and entry.outcome in ("ok", "promoted"):
            return datetime.fromisoformat(entry.time)
    return None


def _refuse_during_experiment(env: Environment) -> None:
    if env.ab_plan() is not None:
        raise DeployConflict(
            f"an A/B test runs in {env.name!r} ({env.ab_key}); run `conveyor ab conclude` first",
            environment=env.name,
        )


def promote(env: Environment, state: ServerState, version: str) -> tuple[ServerState, float]:
    """Atomic switch to ``version``; aliases follow. Returns the new state and the switch time in ms."""
    old = state.primary
    started = time.perf_counter()
    if state.primary != version:
        state = env.client.switch(version)
    switch_ms = (time.perf_counter() - started) * 1000
    if old is not None and old != version and env.name == PRODUCTION:
        set_alias(env.project, PREVIOUS_ALIAS, old)
    set_alias(env.project, env.name, version)
    return state, switch_ms


def resolve_strategy(project: Project, env: str, strategy: str | None) -> str:
    """The strategy to use: given, or ``deploy.strategy`` for production and direct elsewhere."""
    if strategy is None:
        return project.settings.deploy.strategy.value if env == PRODUCTION else DIRECT
    if strategy in NOT_BUILT_STRATEGIES:
        raise UsageError(f"--strategy {strategy}: {NOT_BUILT_STRATEGIES[strategy]}")
    if strategy not in DEPLOY_STRATEGIES:
        raise UsageError(f"--strategy {strategy!r}: expected one of {', '.join(DEPLOY_STRATEGIES)}")
    return strategy


def _canary_steps(project: Project, steps: list[int] | None) -> list[int]:
    """The canary's steps; a canary with no step below 100 % would promote unanalysed, so it is refused."""
    chosen = steps or project.settings.deploy.canary.steps
    if not any(step < 100 for step in chosen):
        given = "--steps" if steps else "deploy.canary.steps"
        raise UsageError(
            f"{given} {','.join(map(str, chosen))}: a canary needs a step below 100 % to analyse "
            "before it promotes (e.g. 10,50,100); use --strategy blue-green to switch at once"
        )
    return chosen


def _command(env: str, how: str, version: str, steps: list[int] | None, interval: float | None) -> str:
    parts = ["conveyor", "deploy", "--env", env, "--strategy", how, "--version", version]
    if steps is not None:
        parts += ["--steps", ",".join(map(str, steps))]
    if interval is not None:
        parts += ["--interval", f"{interval:g}"]
    return " ".join(parts)


def deploy(
    project: Project,
    env_name: str,
    *,
    strategy: str | None = None,
    version: str | None = None,
    steps: list[int] | None = None,
    interval: float | None = None,
    progress: Progress = quiet,
) -> DeployResult:
    """Deploy ``version`` (default: the newest registered) to ``env_name`` with ``strategy``."""
    report = _deploy(
        project,
        env_name,
        strategy=strategy,
        version=version,
        steps=steps,
        interval=interval,
        progress=progress,
    )
    return DeployResult.from_report(report)


def _deploy(
    project: Project,
    env_name: str,
    *,
    strategy: str | None,
    version: str | None,
    steps: list[int] | None,
    interval: float | None,
    progress: Progress,
) -> dict[str, Any]:
    """The rollout; its report grows phase by phase (a failure raises with the report so far)."""
    env = Environment.open(project, env_name)
    how = resolve_strategy(project, env_name, strategy)
    chosen_steps = _canary_steps(project, steps) if how == Strategy.CANARY.value else None
    candidate = check_version(project, version) if version else latest_version(project)
    with env.lock("deploy", version=candidate, strategy=how) as lock:
        lock.update(command=_command(env_name, how, candidate, steps, interval))
        recovered = recover(env, lock, progress)
        env.clear_abort()  # a request aimed at an earlier rollout
        _refuse_during_experiment(env)
        state = env.ensure_server(progress)
        report: dict[str, Any] = {"environment": env_name, "strategy": how, "version": candidate}
        if recovered:
            report["recovered"] = recovered
        if state.primary == candidate and state.share(candidate) == 1.0:
            report.update(outcome="unchanged", reason=f"version {candidate} already serves all traffic")
            record(project, LedgerEntry(env_name, "deploy", "unchanged", candidate, how, report["reason"]))
            _sync_aliases(env, report)
            return {**report, "server": state.to_dict()}
        if state.candidates:
            state = env.client.rollback()  # a stray candidate share (an aborted canary) goes back to 0
        previous = state.primary
        report["previous"] = previous
        lock.update(stable=previous)
        state = _expire_previous(env, state, progress)
        if env_name == PRODUCTION or how != DIRECT:
            _smoke_candidate(env, candidate, report, progress)
        stop_if_aborted(env, candidate, report)
        if how == Strategy.CANARY.value and previous is not None and chosen_steps is not None:
            report = canary_rollout(
                env, lock, state=state, candidate=candidate, report=report, steps=chosen_steps,
                interval=interval, progress=progress,
            )  # fmt: skip
            _sync_aliases(env, report)
            return report
        if how == Strategy.ROLLING.value and previous is not None:
            report = rolling_rollout(env, lock, candidate=candidate, report=report, progress=progress)
            _sync_aliases(env, report)
            return report
        replicas = f" on {len(env.client)} replicas" if len(env.client) > 1 else ""
        progress(f"loading version {candidate} beside {previous or 'nothing'}{replicas}")
        started = time.perf_counter()
        if not state.loaded(candidate):
            state = _phase(env, "load", candidate, how, previous, lambda: env.client.load(candidate))
        report["load_ms"] = (time.perf_counter() - started) * 1000
        stop_if_aborted(env, candidate, report)
        state, switch_ms = _phase(
            env, "switch", candidate, how, previous, lambda: switch(env, state, candidate, how, report)
        )
        progress(
            f"version {candidate} serves all traffic in {env_name}{replicas} (switch {switch_ms:.1f} ms)"
        )
        _sync_aliases(env, report)
        return {**report, "server": state.to_dict()}


def _phase(env: Environment, phase: str, candidate: str, how: str, previous: str | None, call: Any) -> Any:
    """One phase of a rollout across the replicas; a failure is one ``deploy failed`` ledger line
    naming the phase and the replica, with the candidate unloaded where it could be, then raised.

    The fleet has already switched back every replica it had switched (``FleetClient.switch``).
    """
    try:
        return call()
    except ServiceError as exc:
        replica = exc.context.get("replica") or env.client.base_url
        reason = (
            f"{phase} phase failed on replica {replica}: {exc}; "
            f"every replica stays on {previous or 'what it served'}"
        )
        for client in env.client.clients:
            # where it was loaded and has no traffic; a replica that is down holds nothing
            with contextlib.suppress(ConveyorError):
                client.unload(candidate)
        details = {"phase": phase, "replica": replica, "replicas": env.urls}
        record(
            env.project, LedgerEntry(env.name, "deploy", "failed", candidate, how, reason, details=details)
        )
        raise ServiceError(reason, environment=env.name, replica=replica, phase=phase) from exc


def _sync_aliases(env: Environment, report: dict[str, Any]) -> None:
    entry = sync_aliases(env.project, env.name, attempts=3)
    if entry is not None:
        report["aliases"] = {"outcome": entry.outcome, "reason": entry.reason}


def _smoke_candidate(env: Environment, candidate: str, report: dict[str, Any], progress: Progress) -> None:
    progress(f"smoke-testing version {candidate} on a side server")
    with SideServer(env.project, env.name, candidate) as side:
        smoke = smoke_test(env.project, side.base_url, expect_version=candidate, warm_up=SMOKE_WARM_UP)
    report["smoke"] = smoke.to_dict()
    if not smoke.ok:
        reason = "candidate failed its smoke test: " + "; ".join(
            f"{c.name}: {c.detail}" for c in smoke.failures()
        )
        record(env.project, LedgerEntry(env.name, "deploy", "failed", candidate, report["strategy"], reason))
        raise SmokeTestFailed(reason, report={**report, "outcome": "failed", "reason": reason})
