"""Deployment strategies: direct (staging), blue-green and canary, and rollback.

Every strategy runs under the environment's lock, talks to the server over
HTTP (:mod:`conveyor.deploy._controller`) and appends what happened to the
ledger. Aliases follow the server: the environment's alias (``staging``,
``production``) names the version serving all traffic, ``previous`` the one
a rollback returns to.

Safety: nothing changes what production serves before the final atomic
switch (blue-green) or before a traffic step (canary). A controller killed
mid-deploy leaves the server as it was at its last admin call; the next
deploy or rollback finds the dead holder's lock record, writes an
``interrupted`` ledger entry, puts any candidate's share back to 0 and
re-aligns the aliases with what the server serves.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.config import DEPLOY_STRATEGIES, NOT_BUILT_STRATEGIES, Strategy
from conveyor.deploy._canary import CanaryResult, CanaryVerdict, analyse
from conveyor.deploy._controller import ServerClient, ServerState
from conveyor.deploy._ledger import Ledger, LedgerEntry
from conveyor.deploy._lock import EnvironmentLock
from conveyor.deploy._observations import canary_samples
from conveyor.deploy._smoke import smoke_test
from conveyor.deploy._supervisor import EnvironmentProcess, SideServer
from conveyor.deploy._versions import alias_version, check_version, latest_version, set_alias
from conveyor.errors import CanaryFailed, ConveyorError, DeployConflict, SmokeTestFailed, UsageError
from conveyor.project import Project

Progress = Callable[[str], None]
DIRECT = "direct"
PRODUCTION = "production"
PREVIOUS_ALIAS = "previous"
INCONCLUSIVE_RETRIES = 2  # extra intervals to wait for traffic before giving up on a canary step
AB_FILE = "ab.json"


def quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class Environment:
    """One environment: its settings, its supervised process and its admin client."""

    project: Project
    name: str
    process: EnvironmentProcess
    client: ServerClient

    @classmethod
    def open(cls, project: Project, name: str) -> Environment:
        process = EnvironmentProcess(project, name)
        process.settings  # noqa: B018 — a UsageError listing the environments when unknown
        token = process.token() if project.settings.serving.admin_token_env else None
        return cls(project, name, process, ServerClient(process.base_url, token, environment=name))

    def lock(
        self, action: str, *, version: str | None = None, strategy: str | None = None
    ) -> EnvironmentLock:
        return EnvironmentLock(
            self.process.directory / "deploy.lock", self.name, action, version=version, strategy=strategy
        )

    @property
    def ab_file(self) -> Any:
        return self.process.directory / AB_FILE

    def ensure_server(self, progress: Progress) -> ServerState:
        """The server's state, starting the server first when it is not running."""
        if not self.process.running():
            progress(f"starting the {self.name} server on {self.process.base_url}")
            self.process.token_env()  # a UsageError when the admin API is switched off
            self.process.start(wait_path="/health")
        return self.client.state()


def record(project: Project, entry: LedgerEntry) -> LedgerEntry:
    return Ledger.of(project).append(entry)


def recover(env: Environment, lock: EnvironmentLock, progress: Progress) -> dict[str, Any] | None:
    """After an interrupted deploy: ledger entry, candidate traffic back to 0, aliases re-aligned."""
    dead = lock.taken_over
    if dead is None:
        return None
    progress(f"a previous {dead.describe()} was interrupted; recovering")
    done: dict[str, Any] = {"interrupted": dead.describe()}
    if env.process.running():
        state = env.client.state()
        if state.candidates and not env.ab_file.exists():
            state = env.client.rollback()
            done["candidate_traffic"] = "back to 0"
        align_aliases(env, state)
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
    return done


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
    if env.ab_file.exists():
        raise DeployConflict(
            f"an A/B test runs in {env.name!r} ({env.ab_file}); run `conveyor ab conclude` first",
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


def deploy(
    project: Project,
    env_name: str,
    *,
    strategy: str | None = None,
    version: str | None = None,
    steps: list[int] | None = None,
    interval: float | None = None,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Deploy ``version`` (default: the newest registered) to ``env_name`` with ``strategy``."""
    env = Environment.open(project, env_name)
    how = resolve_strategy(project, env_name, strategy)
    candidate = check_version(project, version) if version else latest_version(project)
    with env.lock("deploy", version=candidate, strategy=how) as lock:
        recovered = recover(env, lock, progress)
        _refuse_during_experiment(env)
        state = env.ensure_server(progress)
        report: dict[str, Any] = {"environment": env_name, "strategy": how, "version": candidate}
        if recovered:
            report["recovered"] = recovered
        if state.primary == candidate and state.share(candidate) == 1.0:
            align_aliases(env, state)
            report.update(outcome="unchanged", reason=f"version {candidate} already serves all traffic")
            record(project, LedgerEntry(env_name, "deploy", "unchanged", candidate, how, report["reason"]))
            return {**report, "server": state.to_dict()}
        if state.candidates:
            state = env.client.rollback()  # a stray candidate share (an aborted canary) goes back to 0
        previous = state.primary
        report["previous"] = previous
        state = _expire_previous(env, state, progress)
        if how == Strategy.CANARY.value and previous is not None:
            return _canary(
                env,
                state=state,
                candidate=candidate,
                report=report,
                steps=steps,
                interval=interval,
                progress=progress,
            )
        if how != DIRECT and previous is not None:
            _smoke_candidate(env, candidate, report, progress)
        progress(f"loading version {candidate} beside {previous or 'nothing'}")
        if not state.loaded(candidate):
            state = env.client.load(candidate)
        state, switch_ms = promote(env, state, candidate)
        progress(f"version {candidate} serves all traffic in {env_name} (switch {switch_ms:.1f} ms)")
        reason = f"switched from {previous or 'nothing'} to {candidate}"
        record(
            project,
            LedgerEntry(env_name, "deploy", "ok", candidate, how, reason, details={"previous": previous}),
        )
        return {
            **report,
            "outcome": "ok",
            "reason": reason,
            "switch_ms": switch_ms,
            "server": state.to_dict(),
        }


def _smoke_candidate(env: Environment, candidate: str, report: dict[str, Any], progress: Progress) -> None:
    progress(f"smoke-testing version {candidate} on a side server")
    with SideServer(env.project, env.name, candidate) as side:
        smoke = smoke_test(env.project, side.base_url, expect_version=candidate)
    report["smoke"] = smoke.to_dict()
    if not smoke.ok:
        reason = "candidate failed its smoke test: " + "; ".join(
            f"{c.name}: {c.detail}" for c in smoke.failures()
        )
        record(env.project, LedgerEntry(env.name, "deploy", "failed", candidate, report["strategy"], reason))
        raise SmokeTestFailed(reason, report={**report, "outcome": "failed", "reason": reason})


def _canary(
    env: Environment,
    *,
    state: ServerState,
    candidate: str,
    report: dict[str, Any],
    steps: list[int] | None,
    interval: float | None,
    progress: Progress,
) -> dict[str, Any]:
    settings = env.project.settings.deploy.canary
    steps = steps or settings.steps
    wait = settings.interval_seconds if interval is None else interval
    flush = env.project.settings.serving.request_log.flush_seconds
    stable = state.primary or ""
    progress(f"loading version {candidate} beside {stable}")
    if not state.loaded(candidate):
        state = env.client.load(candidate)
    analyses: list[dict[str, Any]] = []
    report["steps"] = analyses
    for step in steps:
        if step >= 100:
            break
        share = step / 100
        since = datetime.now(UTC)
        env.client.traffic({stable: 1 - share, candidate: share}, mode="weighted")
        record(
            env.project,
            LedgerEntry(env.name, "canary-step", "ok", candidate, "canary", f"{step} % to {candidate}"),
        )
        result: CanaryResult | None = None
        for attempt in range(1 + INCONCLUSIVE_RETRIES):
            progress(f"{step} % of traffic on {candidate}; analysing for {wait:g} s")
            time.sleep(wait + flush + 0.5)  # the window, plus the request log's flush delay
            samples = canary_samples(env.project, env.name, since, stable, candidate)
            result = analyse(*samples, settings, expected_share=share)
            if result.verdict is not CanaryVerdict.INCONCLUSIVE or attempt == INCONCLUSIVE_RETRIES:
                break
            progress(f"inconclusive ({result.reason}); waiting another interval")
        if result is None:  # pragma: no cover — the loop runs at least once
            continue
        analyses.append({"step": step, **result.to_dict()})
        if result.verdict is not CanaryVerdict.PASS:
            _abort_canary(env, candidate, step, result, report)
    state, switch_ms = promote(env, env.client.state(), candidate)
    reason = f"canary passed {len(analyses)} analyses; promoted {candidate} over {stable}"
    record(
        env.project,
        LedgerEntry(env.name, "deploy", "ok", candidate, "canary", reason, details={"previous": stable}),
    )
    progress(reason)
    return {**report, "outcome": "ok", "reason": reason, "switch_ms": switch_ms, "server": state.to_dict()}


def _abort_canary(
    env: Environment, candidate: str, step: int, result: CanaryResult, report: dict[str, Any]
) -> None:
    env.client.rollback()  # the candidate's share goes back to 0 at once
    env.client.unload(candidate)
    verdict = "failed" if result.verdict is CanaryVerdict.FAIL else "was inconclusive"
    reason = f"canary analysis {verdict} at {step} %: {result.reason}; version {candidate} rolled back to 0 %"
    report.update(outcome="rolled-back", reason=reason)
    record(env.project, LedgerEntry(env.name, "deploy", "rolled-back", candidate, "canary", reason))
    report["alert"] = _alert(
        env, f"Canary of version {candidate} rolled back in {env.name}", reason, candidate
    )
    raise CanaryFailed(reason, report={**report, "ok": False})


def _alert(env: Environment, title: str, text: str, version: str) -> str:
    """Send the alert of a failed canary (issue "Monitoring"); a failed delivery never hides the failure."""
    from conveyor.monitoring import send_alert

    try:
        results = send_alert(env.project, title, text, {"environment": env.name, "version": version})
    except ConveyorError as exc:
        return f"not sent: {exc}"
    return ", ".join(f"{r.channel}: {r.status}" for r in results) or "no alert channel configured"


def rollback(project: Project, env_name: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Switch ``env_name`` back to its previous version (or abort a candidate's share)."""
    env = Environment.open(project, env_name)
    with env.lock("rollback") as lock:
        recovered = recover(env, lock, progress)
        if not env.process.running():
            raise UsageError(f"the {env_name} server is not running: nothing to roll back")
        before = env.client.state()
        started = time.perf_counter()
        already = bool(recovered and "candidate_traffic" in recovered)
        # recovering already put the interrupted candidate back to 0 %: do not roll back twice
        state = before if already else env.client.rollback()
        switch_ms = (time.perf_counter() - started) * 1000
        if already:
            reason = f"the interrupted deploy's candidate is back to 0 %; {state.primary} serves all traffic"
        elif before.candidates:
            reason = (
                f"candidate {', '.join(before.candidates)} back to 0 %; {state.primary} serves all traffic"
            )
            if env.ab_file.exists():
                env.ab_file.rename(env.ab_file.with_suffix(".aborted.json"))
        else:
            reason = f"switched back from {before.primary} to {state.primary}"
        align_aliases(env, state)
        progress(f"{reason} ({switch_ms:.1f} ms)")
        record(project, LedgerEntry(env_name, "rollback", "ok", state.primary, None, reason))
        report = {"environment": env_name, "outcome": "ok", "reason": reason, "switch_ms": switch_ms}
        if recovered:
            report["recovered"] = recovered
        return {**report, "server": state.to_dict()}
