"""The canary's steps: traffic share, analysis window, verdict — and the operator's abort.

Each step below 100 % sets the candidate's share, waits one analysis window
(plus the request log's flush delay) and asks :func:`conveyor.deploy.analyse`
for a verdict; only a *pass* at every step promotes, so a canary always runs
at least one analysis before it promotes (a canary with no step below 100 %
is refused before it starts). A failed or inconclusive step puts the
candidate back to 0 %, unloads it and alerts.

The lock record follows the rollout (weight, since when), so ``conveyor
status`` shows it — and shows it still after a ``kill -9``. An operator's
``conveyor rollback`` during the rollout writes an abort request: the rollout
notices it within :data:`~conveyor.deploy._environment.ABORT_POLL_SECONDS`,
makes sure the candidate has no traffic, unloads it, writes ``deploy
aborted`` to the ledger and stops with :class:`~conveyor.errors.RolloutAborted`.
An operator's ``conveyor canary promote`` is read at the same points
(:mod:`conveyor.deploy._canary_control`): the remaining steps are skipped and
the candidate takes 100 % at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

from conveyor.deploy._canary import CanaryResult, CanaryVerdict, analyse, step_record
from conveyor.deploy._canary_control import promote_if_requested, wait_for_operator
from conveyor.deploy._controller import ServerState
from conveyor.deploy._environment import Environment, Progress, record, switch
from conveyor.deploy._ledger import LedgerEntry
from conveyor.deploy._lock import EnvironmentLock
from conveyor.deploy._observations import canary_samples
from conveyor.errors import CanaryFailed, ConveyorError, RolloutAborted, ServiceError

INCONCLUSIVE_RETRIES = 2  # extra intervals to wait for traffic before giving up on a canary step
ABORT_ATTEMPTS = 5
ABORT_RETRY_SECONDS = 0.2


def stop_if_aborted(env: Environment, candidate: str, report: dict[str, Any]) -> None:
    """Stop the rollout when an operator asked: candidate without traffic, unloaded, ledger line."""
    if not env.abort_requested():
        return
    env.clear_abort()
    # the operator's rollback moves the traffic at the same moment: read, act, and read again
    # when a call lost that race (a 409), a bounded number of times
    for _ in range(ABORT_ATTEMPTS):
        try:
            state = env.client.state()
            if state.candidates:
                env.client.rollback()
                continue
            if state.loaded(candidate) and state.primary != candidate:
                env.client.unload(candidate)
            break
        except ServiceError:
            time.sleep(ABORT_RETRY_SECONDS)
    reason = f"the rollout of version {candidate} was aborted by an operator's rollback"
    record(env.project, LedgerEntry(env.name, "deploy", "aborted", candidate, report["strategy"], reason))
    report.update(outcome="aborted", reason=reason)
    raise RolloutAborted(reason, environment=env.name, version=candidate)


def canary_salt(candidate: str, started: datetime) -> str:
    """The sticky salt of one canary rollout: the same for all its steps, new for the next rollout
    (so the users on one candidate are not the users on the next)."""
    return f"canary:{candidate}:{started.isoformat(timespec='microseconds')}"


def canary_rollout(
    env: Environment,
    lock: EnvironmentLock,
    *,
    state: ServerState,
    candidate: str,
    report: dict[str, Any],
    steps: list[int],
    interval: float | None,
    progress: Progress,
) -> dict[str, Any]:
    settings = env.project.settings.deploy.canary
    wait = settings.interval_seconds if interval is None else interval
    flush = env.project.settings.serving.request_log.flush_seconds
    stable = state.primary or ""
    salt = canary_salt(candidate, datetime.now(UTC))
    progress(f"loading version {candidate} beside {stable}")
    if not state.loaded(candidate):
        state = env.client.load(candidate)
    analyses: list[dict[str, Any]] = []
    report["steps"] = analyses
    report["salt"] = salt  # the sticky assignment of this rollout's users (ledger: each canary-step)
    promote_if_asked = partial(
        promote_if_requested, env, lock, candidate=candidate, stable=stable, steps=steps, report=report
    )
    for step in [s for s in steps if s < 100]:
        share = step / 100
        stop_if_aborted(env, candidate, report)
        if (promoted := promote_if_asked()) is not None:
            return promoted  # an operator's `conveyor canary promote`: the remaining steps are skipped
        since = datetime.now(UTC)
        # the same weights and salt on every replica, sticky by user: a user lands on the same
        # version whichever replica answers, and (the shares ordered stable first) a user on the
        # candidate at 5 % stays on it at 25 %; the analysis counts users (conveyor.deploy._canary)
        env.client.traffic({stable: 1 - share, candidate: share}, mode="sticky", salt=salt)
        lock.update(weight=float(step), weight_since=since.isoformat(timespec="seconds"))
        record(
            env.project,
            LedgerEntry(
                env.name,
                "canary-step",
                "ok",
                candidate,
                "canary",
                f"{step} % to {candidate}",
                details={"share": share, "mode": "sticky", "salt": salt},
            ),
        )
        stop_if_aborted(env, candidate, report)  # an abort that raced the step above
        result: CanaryResult | None = None
        for attempt in range(1 + INCONCLUSIVE_RETRIES):
            progress(f"{step} % of traffic on {candidate}; analysing for {wait:g} s")
            # the window, plus the request log's flush delay; an abort cuts it short
            if wait_for_operator(env, lock, wait + flush + 0.5):
                stop_if_aborted(env, candidate, report)
                if (promoted := promote_if_asked()) is not None:
                    return promoted
            samples = canary_samples(env.project, env.name, since, stable, candidate)
            result = analyse(*samples, settings, expected_share=share)
            if result.verdict is not CanaryVerdict.INCONCLUSIVE or attempt == INCONCLUSIVE_RETRIES:
                break
            progress(f"inconclusive ({result.reason}); waiting another interval")
        if result is None:  # pragma: no cover — the loop runs at least once
            continue
        analysis = step_record(step, *samples, result, settings)
        analyses.append(analysis)
        record(
            env.project,
            LedgerEntry(
                env.name,
                "canary-analysis",
                result.verdict.value,
                candidate,
                "canary",
                f"{step} %: {result.reason}",
                details=analysis,
            ),
        )
        if result.verdict is not CanaryVerdict.PASS:
            _abort_canary(env, candidate, step, result, report)
    if not analyses:  # pragma: no cover — deploy refuses steps without one below 100 %
        raise CanaryFailed(f"the canary of {candidate} ran no analysis; not promoted", report=report)
    stop_if_aborted(env, candidate, report)
    report["reason"] = f"canary passed {len(analyses)} analyses; promoted {candidate} over {stable}"
    state, switch_ms = switch(env, env.client.state(), candidate, "canary", report)
    lock.update(weight=100.0, weight_since=datetime.now(UTC).isoformat(timespec="seconds"))
    progress(report["reason"])
    return {**report, "switch_ms": switch_ms, "server": state.to_dict()}


def _abort_canary(
    env: Environment, candidate: str, step: int, result: CanaryResult, report: dict[str, Any]
) -> None:
    started = time.perf_counter()
    env.client.rollback()  # the candidate's share goes back to 0 at once
    report["rollback_ms"] = (time.perf_counter() - started) * 1000
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
