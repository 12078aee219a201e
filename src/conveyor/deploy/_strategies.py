"""``conveyor deploy``: what every deployment strategy shares, around the registered strategy.

The strategies themselves — direct (staging), blue-green, canary, rolling, and any a plugin
registers — are objects of the ``conveyor.deploy_strategies`` registry
(:mod:`conveyor.deploy._strategy_types`, docs/extending.md).

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
rollback recovers (:func:`conveyor.deploy._environment.recover`). A state
store that dies mid-rollout (a team's PostgreSQL) stops the deploy with one
line after the servers are put back as they were
(:func:`conveyor.deploy._environment.store_lost`): production never serves a
version the ledger does not name. Rollback
lives in :mod:`conveyor.deploy._rollback`, the canary's steps in
:mod:`conveyor.deploy._rollout`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.config import DEPLOY_STRATEGIES, NOT_BUILT_STRATEGIES
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
    store_lost,
)
from conveyor.deploy._ledger import Ledger, LedgerEntry
from conveyor.deploy._lock import EnvironmentLock
from conveyor.deploy._results import DeployResult
from conveyor.deploy._rollout import stop_if_aborted
from conveyor.deploy._smoke import smoke_test
from conveyor.deploy._strategy_types import DeployStrategy, Rollout, deploy_strategy
from conveyor.deploy._supervisor import SideServer
from conveyor.deploy._versions import alias_version, check_version, latest_version, set_alias
from conveyor.errors import DeployConflict, SmokeTestFailed, StateStoreError, UsageError
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
    chosen = deploy_strategy(how)
    chosen_steps = chosen.prepare(project, steps)
    candidate = check_version(project, version) if version else latest_version(project)
    with env.lock("deploy", version=candidate, strategy=how) as lock:
        report: dict[str, Any] = {"environment": env_name, "strategy": how, "version": candidate}
        try:
            lock.update(command=_command(env_name, how, candidate, steps, interval))
            return _locked(env, lock, chosen, report, chosen_steps, interval, progress)
        except StateStoreError as exc:
            raise _store_failed(env, exc, report) from None


def _store_failed(env: Environment, exc: StateStoreError, report: dict[str, Any]) -> StateStoreError:
    """The state store failed during a deploy: one line, with production as it was before."""
    candidate = str(report["version"])
    if exc.context.get("servers_restored"):
        return exc  # the switch already put the servers back and said so
    if report.get("outcome") in ("ok", "unchanged"):
        return StateStoreError(
            f"{exc}; version {candidate} serves {env.name} and its deploy is recorded in the ledger",
            **exc.context,
        )
    return store_lost(env, exc, candidate, report.get("previous"))


def _locked(
    env: Environment,
    lock: EnvironmentLock,
    chosen: DeployStrategy,
    report: dict[str, Any],
    steps: list[int] | None,
    interval: float | None,
    progress: Progress,
) -> dict[str, Any]:
    """The deploy under the environment's lock (see :func:`_deploy`)."""
    project, env_name, candidate, how = env.project, env.name, str(report["version"]), str(report["strategy"])
    recovered = recover(env, lock, progress)
    env.clear_abort()  # a request aimed at an earlier rollout
    _refuse_during_experiment(env)
    state = env.ensure_server(progress)
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
    if env_name == PRODUCTION or chosen.smoke_test:
        _smoke_candidate(env, candidate, report, progress)
    stop_if_aborted(env, candidate, report)
    rollout = Rollout(
        env=env, lock=lock, state=state, candidate=candidate, previous=previous, strategy=how,
        report=report, steps=steps, interval=interval, progress=progress,
    )  # fmt: skip
    report = chosen.roll_out(rollout)
    _sync_aliases(env, report)
    if rollout.final_state is None:
        return report
    return {**report, "server": rollout.final_state.to_dict()}


def _sync_aliases(env: Environment, report: dict[str, Any]) -> None:
    """The registry aliases after a recorded switch; a store that fails now does not undo the deploy
    (the aliases are bookkeeping: the next deploy or rollback sets them)."""
    try:
        entry = sync_aliases(env.project, env.name, attempts=3)
    except StateStoreError as exc:
        report["aliases"] = {"outcome": "failed", "reason": f"not updated: {exc}"}
        return
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
