"""One canary judgement from the request logs, for platforms that run their own rollouts.

Argo Rollouts and Flagger move the traffic; Conveyor says whether the
candidate is worse, with the very analysis its own canary uses
(:func:`conveyor.deploy.analyse` over :func:`conveyor.deploy.canary_samples`):
the user is the unit (a request without a user id is its own unit). Their
routers split by request, not by user, so a user may appear in both arms; each
arm still counts its users' requests together, which can only overstate the
variance of the difference (the two arms' shares of one user are positively
correlated), never understate it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.errors import UsageError
from conveyor.project import Project

DEFAULT_WINDOW = timedelta(minutes=10)
_NOT_COUNTS = {"latencies_ms", "per_user"}


@dataclass(frozen=True)
class Judgement:
    """The verdict on ``candidate`` against ``baseline`` over the window ending now."""

    env: str
    candidate: str
    baseline: str | None
    since: datetime
    verdict: str  # pass | fail | inconclusive
    reason: str
    result: dict[str, Any]  # CanaryResult.to_dict()
    arms: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "since": self.since.isoformat(),
            "verdict": self.verdict,
            "reason": self.reason,
            "arms": self.arms,
            "metrics": self.result.get("metrics", []),
        }


def _busiest_other(project: Project, env: str, since: datetime, candidate: str) -> str | None:
    """The version that answered most of the window's requests other than the candidate's."""
    from conveyor.deploy import served_versions

    return next((v for v in served_versions(project, env, since) if v != candidate), None)


def judge_canary(
    project: Project,
    env: str,
    candidate: str,
    baseline: str | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> Judgement:
    """Conveyor's canary verdict on ``candidate`` (UsageError on an unknown environment)."""
    from conveyor.deploy import ArmSample, analyse, canary_samples

    if env not in project.settings.deploy.environments:
        known = ", ".join(sorted(project.settings.deploy.environments)) or "none"
        raise UsageError(f"env {env!r}: unknown environment (known: {known})")
    if not candidate.strip():
        raise UsageError("candidate: the candidate's model version is required")
    since = datetime.now(UTC) - window
    stable = baseline or _busiest_other(project, env, since, candidate)
    if stable is None:
        sample = ArmSample(candidate, 0, 0)
        return Judgement(
            env, candidate, None, since, "inconclusive",
            f"no other version answered requests in {env} since {since.isoformat()}: nothing to compare with",
            {"metrics": []}, {"candidate": _arm(sample)},
        )  # fmt: skip
    stable_arm, candidate_arm = canary_samples(project, env, since, stable, candidate)
    result = analyse(stable_arm, candidate_arm, project.settings.deploy.canary)
    return Judgement(
        env,
        candidate,
        stable,
        since,
        result.verdict.value,
        result.reason,
        result.to_dict(),
        {"baseline": _arm(stable_arm), "candidate": _arm(candidate_arm)},
    )


def _arm(sample: Any) -> dict[str, Any]:
    """An arm's counts, users and error rate (its raw latencies and per-user counts stay out)."""
    counts = {f.name: getattr(sample, f.name) for f in fields(sample) if f.name not in _NOT_COUNTS}
    return {**counts, "users": sample.users, "error_rate": sample.error_rate}
