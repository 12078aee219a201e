"""Canary analysis: is the candidate worse than the stable version over the same window?

**The unit is the user.** The canary routes sticky by user (a salted hash of
the user id, the same on every replica), so a user's requests all land in one
arm, and they are correlated: a user whose requests fail tends to fail again,
a user with a large history is slow every time, and a few users send most of
the requests. Tests that count requests as independent underestimate the
variance and fail healthy canaries far more often than alpha
(``benchmarks/canary_calibration.py``). Every test below treats the user as
the independent unit; a request without a user id is its own unit (the rule of
the A/B test's ``_per_user``).

Up to four metrics, each a one-sided question "is the candidate worse?":

* **error rate** — errors ÷ requests is a ratio of per-user sums: the
  difference candidate − stable with each rate's variance from the delta method
  over users (:mod:`conveyor.deploy._ratio`, the A/B test's implementation),
  after adding two pseudo-users to each arm, one failed request and one good one
  (Agresti–Caffo's +1/+1, which it is exactly when every user sends one request:
  the variance stays positive at 0 % and 100 % errors). The metric fails when
  the lower confidence bound of the increase exceeds the tolerated increase
  (``deploy.canary.max_error_rate_increase``).
* **latency** — a one-sided Mann–Whitney U test on each user's **median**
  latency (one value per independent unit, so the test's independence holds
  however many requests a user sends and however correlated they are; Kayenta
  uses the same test on raw samples) *and* an effect size: the candidate's p99
  over all its requests divided by the stable's must exceed ``max_p99_ratio``.
  A per-user cluster bootstrap of the p99 ratio would test the effect size
  itself, but costs thousands of resamples per step and per judge call; the rank
  test on medians is exact under the null and cheap. A significant but tiny
  shift does not fail the canary; a large p99 on a handful of users does not
  either.
* **traffic share** — the candidate must get about its share. Sticky routing
  assigns each user independently (a uniform hash), so the candidate's **users**
  are binomial (n = users, p = share); and the share of **requests** it
  answered is tested with its variance given the users' request counts,
  share(1 − share) Σ n_u² ÷ (Σ n_u)², so that requests that crashed before they
  could be logged are caught even when every user still shows up. Each of the
  two is tested at half the metric's alpha; the metric fails when one is
  significantly below, and under 80 % of, the share.
* **online metric** — where feedback exists in both arms, the click-through
  rate per user as the A/B test computes it (clicked answers ÷ answers, a ratio
  of per-user sums, :mod:`conveyor.deploy._ratio`), one-sided: is the
  candidate's lower? The variance of the difference is the pooled one under the
  null (every unit's residual around the pooled rate), not each arm's own: with
  heavy-tailed, skewed users an arm's own variance moves with its rate, and a
  test of the lower tail on it rejects more often than alpha. The error
  rate's test is of the upper tail, where the same effect makes the unpooled
  variance conservative, and its null is an increase of the tolerance, not
  equality: it keeps each arm's variance.

The metrics share the significance level: each is tested at alpha divided by
the number of metrics tested (Bonferroni), so the false-fail rate of a
healthy canary stays at or below alpha. With fewer than ``min_requests``
requests, or fewer than :data:`MIN_USERS` users, in either arm the result is
*inconclusive*, never *pass*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np
from scipy import stats

from conveyor.config import CanarySection
from conveyor.deploy._abtest import MIN_USERS_PER_ARM
from conveyor.deploy._ratio import UnitRatio, pooled_difference_variance
from conveyor.errors import UsageError

MIN_FEEDBACK_IMPRESSIONS = 100  # below this per arm the online metric is not tested
MIN_SHARE_RATIO = 0.8  # a candidate answering under 80 % of its share (significantly) lost requests
MIN_USERS = MIN_USERS_PER_ARM  # per arm, as in the A/B test: fewer and the per-user variance is not trusted


class CanaryVerdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


def _ints(values: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


@dataclass(frozen=True, eq=False)
class UserCounts:
    """One arm's numbers per unit — a user, or a request without a user id.

    ``requests[u]`` and ``errors[u]`` for every unit; ``latency_ms[u]`` the median
    latency of the unit's successful answers (units with one); ``impressions[u]``
    and ``clicks[u]`` (clicked answers) for units with ``/recommend`` answers.
    """

    requests: np.ndarray
    errors: np.ndarray
    latency_ms: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray

    @classmethod
    def of(
        cls,
        requests: Sequence[int] | np.ndarray,
        errors: Sequence[int] | np.ndarray,
        latency_ms: Sequence[float] | np.ndarray = (),
        impressions: Sequence[int] | np.ndarray = (),
        clicks: Sequence[int] | np.ndarray = (),
    ) -> UserCounts:
        n, e, m, c = _ints(requests), _ints(errors), _ints(impressions), _ints(clicks)
        if n.shape != e.shape or m.shape != c.shape:
            raise UsageError(
                "per-user counts: requests and errors (impressions and clicks) need one per user"
            )
        if np.any(n < 1) or np.any(e < 0) or np.any(e > n) or np.any(c < 0) or np.any(c > m):
            raise UsageError(
                "per-user counts: each user needs 0 <= errors <= requests, 0 <= clicks <= impressions"
            )
        return cls(n, e, np.asarray(latency_ms, dtype=np.float64).reshape(-1), m, c)

    @classmethod
    def one_per_request(
        cls, requests: int, errors: int, latencies_ms: Sequence[float], impressions: int, clicks: int
    ) -> UserCounts:
        """Every request its own unit: how counts without user ids read."""
        return cls.of(
            np.ones(requests, dtype=np.int64),
            (np.arange(requests) < errors).astype(np.int64),
            latencies_ms,
            np.ones(impressions, dtype=np.int64),
            (np.arange(impressions) < clicks).astype(np.int64),
        )


@dataclass(frozen=True)
class ArmSample:
    """What one version did during the analysis window.

    The totals (``requests``, ``errors``, the latencies of successful answers,
    ``impressions``, ``clicks``) describe the arm; the tests use ``per_user``.
    Without it — counts alone, as a test or a foreign caller may give them —
    every request is its own unit (:meth:`UserCounts.one_per_request`).
    Build a sample with its users with :meth:`from_users`.
    """

    version: str
    requests: int
    errors: int
    latencies_ms: Sequence[float] = ()
    impressions: int = 0
    clicks: int = 0
    per_user: UserCounts | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_users(cls, version: str, per_user: UserCounts, latencies_ms: Sequence[float]) -> ArmSample:
        """The arm whose units did ``per_user``; ``latencies_ms`` are its successful answers'."""
        return cls(
            version,
            int(per_user.requests.sum()),
            int(per_user.errors.sum()),
            latencies_ms,
            int(per_user.impressions.sum()),
            int(per_user.clicks.sum()),
            per_user,
        )

    @cached_property
    def units(self) -> UserCounts:
        if self.per_user is not None:
            return self.per_user
        return UserCounts.one_per_request(
            self.requests, self.errors, self.latencies_ms, self.impressions, self.clicks
        )

    @property
    def users(self) -> int:
        """Independent units: users, and requests without a user id."""
        return int(self.units.requests.size)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else math.nan


@dataclass(frozen=True)
class MetricResult:
    name: str
    verdict: CanaryVerdict
    reason: str
    stable: float
    candidate: float
    p_value: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CanaryResult:
    verdict: CanaryVerdict
    reason: str
    metrics: list[MetricResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "metrics": [{**asdict(m), "verdict": m.verdict.value} for m in self.metrics],
        }


def _p99(values: Sequence[float]) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), 99)) if len(values) else math.nan


def _verdict(failed: bool) -> CanaryVerdict:
    return CanaryVerdict.FAIL if failed else CanaryVerdict.PASS


def _smoothed_errors(sample: ArmSample) -> UnitRatio:
    """The arm's error rate over its users, with two pseudo-users: one failed request, one good one."""
    units = sample.units
    return UnitRatio.from_units(np.append(units.requests, [1, 1]), np.append(units.errors, [1, 0]))


def _error_metric(stable: ArmSample, candidate: ArmSample, tolerance: float, alpha: float) -> MetricResult:
    s, c = _smoothed_errors(stable), _smoothed_errors(candidate)
    variance = s.variance + c.variance
    se = math.sqrt(variance)
    difference = c.rate - s.rate
    lower = difference - float(stats.norm.ppf(1 - alpha)) * se
    p_value = (
        float(stats.norm.sf((difference - tolerance) / se)) if se > 0 else float(difference <= tolerance)
    )
    binomial = s.rate * (1 - s.rate) / s.denominator + c.rate * (1 - c.rate) / c.denominator
    failed = lower > tolerance
    reason = (
        f"error rate {candidate.error_rate:.4f} vs stable {stable.error_rate:.4f} "
        f"({candidate.users} and {stable.users} users): "
        f"the increase is at least {lower:+.4f} at {1 - alpha:.4g} confidence"
        + (f", above the tolerated {tolerance:.4f}" if failed else f", within the tolerated {tolerance:.4f}")
    )
    return MetricResult(
        "error_rate",
        _verdict(failed),
        reason,
        stable.error_rate,
        candidate.error_rate,
        p_value,
        {"increase_lower_bound": lower, "design_effect": variance / binomial if binomial > 0 else math.nan},
    )


def _latency_metric(stable: ArmSample, candidate: ArmSample, max_ratio: float, alpha: float) -> MetricResult:
    p99_s, p99_c = _p99(stable.latencies_ms), _p99(candidate.latencies_ms)
    ratio = p99_c / p99_s if p99_s > 0 else math.inf
    test = stats.mannwhitneyu(candidate.units.latency_ms, stable.units.latency_ms, alternative="greater")
    p_value = float(test.pvalue)
    failed = p_value < alpha and ratio > max_ratio
    reason = (
        f"p99 {p99_c:.1f} ms vs stable {p99_s:.1f} ms (ratio {ratio:.2f}, limit {max_ratio:.2f}); "
        f"Mann–Whitney U on per-user median latency, one-sided p = {p_value:.3g}"
    )
    return MetricResult("latency", _verdict(failed), reason, p99_s, p99_c, p_value, {"p99_ratio": ratio})


def _online_metric(stable: ArmSample, candidate: ArmSample, alpha: float) -> MetricResult:
    s = UnitRatio.from_units(stable.units.impressions, stable.units.clicks)
    c = UnitRatio.from_units(candidate.units.impressions, candidate.units.clicks)
    variance = pooled_difference_variance(s, c)  # the lower tail: the pooled (score) variance
    z = (c.rate - s.rate) / math.sqrt(variance) if variance > 0 else 0.0
    p_value = float(stats.norm.cdf(z))  # one-sided: the candidate's rate is lower
    failed = p_value < alpha
    reason = (
        f"click-through rate {c.rate:.4f} vs stable {s.rate:.4f} "
        f"({candidate.impressions} and {stable.impressions} impressions, "
        f"{c.units} and {s.units} users); per-user one-sided p = {p_value:.3g}"
    )
    return MetricResult("ctr", _verdict(failed), reason, s.rate, c.rate, p_value)


def _share_metric(stable: ArmSample, candidate: ArmSample, expected: float, alpha: float) -> MetricResult:
    users = stable.users + candidate.users
    user_share = candidate.users / users
    p_users = float(stats.binomtest(candidate.users, users, expected, alternative="less").pvalue)
    # each unit's requests go one way, B_u ~ Bernoulli(share) independent of its count n_u: given the
    # counts the requests' share has variance share(1 - share) Σ n_u² / (Σ n_u)² (a score test)
    n = np.concatenate([stable.units.requests, candidate.units.requests]).astype(np.float64)
    request_share = float(candidate.units.requests.sum()) / float(n.sum())
    se = math.sqrt(expected * (1 - expected) * float(n @ n)) / float(n.sum())
    p_requests = float(stats.norm.cdf((request_share - expected) / se))
    half = alpha / 2  # two questions in one metric
    lost_users = p_users < half and user_share < MIN_SHARE_RATIO * expected
    lost_requests = p_requests < half and request_share < MIN_SHARE_RATIO * expected
    failed = lost_users or lost_requests
    reason = (
        f"the candidate answered {user_share:.3f} of the users (one-sided binomial p = {p_users:.3g}) and "
        f"{request_share:.3f} of the logged requests (p = {p_requests:.3g}); its share is {expected:.3f}"
        + ("; the missing answers were not logged: crashes" if failed else "")
    )
    return MetricResult(
        "traffic_share",
        _verdict(failed),
        reason,
        1 - expected,
        request_share,
        min(1.0, 2 * min(p_users, p_requests)),
        {
            "user_share": user_share,
            "request_share": request_share,
            "p_users": p_users,
            "p_requests": p_requests,
        },
    )


def analyse(
    stable: ArmSample, candidate: ArmSample, settings: CanarySection, *, expected_share: float | None = None
) -> CanaryResult:
    """Compare ``candidate`` with ``stable`` over one window; pass, fail or inconclusive.

    ``expected_share`` is the candidate's configured share (sticky by user);
    when given, a candidate that gets far fewer users or logged requests than
    its share fails (requests that crashed before they could be logged).
    """
    fewest = min(stable.requests, candidate.requests)
    if fewest < settings.min_requests:
        return CanaryResult(
            CanaryVerdict.INCONCLUSIVE,
            f"too few requests to judge: stable {stable.requests}, candidate {candidate.requests} "
            f"(at least {settings.min_requests} each are needed)",
            [],
        )
    if min(stable.users, candidate.users) < MIN_USERS:
        return CanaryResult(
            CanaryVerdict.INCONCLUSIVE,
            f"too few users to judge: stable {stable.users}, candidate {candidate.users} "
            f"(at least {MIN_USERS} each are needed: the user is the unit of the analysis)",
            [],
        )
    have_latency = stable.units.latency_ms.size > 0 and candidate.units.latency_ms.size > 0
    have_feedback = (
        min(stable.impressions, candidate.impressions) >= MIN_FEEDBACK_IMPRESSIONS
        and min(stable.units.impressions.size, candidate.units.impressions.size) >= MIN_USERS
    )
    have_share = expected_share is not None and 0 < expected_share < 1
    tested = 1 + int(have_latency) + int(have_feedback) + int(have_share)
    alpha = settings.alpha / tested  # Bonferroni across the metrics tested
    metrics = [_error_metric(stable, candidate, settings.max_error_rate_increase, alpha)]
    if have_share and expected_share is not None:
        metrics.append(_share_metric(stable, candidate, expected_share, alpha))
    if have_latency:
        metrics.append(_latency_metric(stable, candidate, settings.max_p99_ratio, alpha))
    if have_feedback:
        metrics.append(_online_metric(stable, candidate, alpha))
    failed = [m for m in metrics if m.verdict is CanaryVerdict.FAIL]
    if failed:
        return CanaryResult(CanaryVerdict.FAIL, "; ".join(f"{m.name}: {m.reason}" for m in failed), metrics)
    return CanaryResult(
        CanaryVerdict.PASS,
        f"no metric worse than stable ({', '.join(m.name for m in metrics)}; alpha {settings.alpha} "
        f"shared by {tested} metric{'s' if tested > 1 else ''}; {stable.users} and {candidate.users} users)",
        metrics,
    )


# -- the record of one step (ledger entry ``canary-analysis``, ``conveyor deploy --json``'s steps) --
def _latency_summary(latencies: Sequence[float], confidence: float) -> dict[str, Any]:
    if not len(latencies):
        return {"p50_ms": None, "p99_ms": None, "p99_ci_ms": [None, None]}
    values = np.asarray(latencies, dtype=float)
    # a distribution-free interval of the 99th percentile from the order statistics
    # (scipy's quantile test); a bound the sample is too small to give is None
    ci = stats.quantile_test(values, q=float(np.percentile(values, 99)), p=0.99).confidence_interval(
        confidence
    )
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "p99_ci_ms": [_finite_or_none(ci.low), _finite_or_none(ci.high)],
    }


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _wilson(rate: float, n: float, confidence: float) -> list[float | None]:
    # the Wilson score interval at a (possibly fractional) effective size: scipy's binomtest takes
    # whole counts only, and the formula is three lines (Wilson 1927; Newcombe 1998, method 3)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _error_interval(sample: ArmSample, confidence: float) -> list[float | None]:
    """The arm's error rate interval: Wilson at the effective size, requests ÷ design effect.

    The design effect (Kish) is the per-user (delta-method) variance over the binomial one,
    both in the 1/K convention so that one request per user gives exactly 1, and never below
    1: correlated requests widen the interval, they never narrow it.
    """
    if not sample.requests:
        return [None, None]
    ratio = UnitRatio.from_units(sample.units.requests, sample.units.errors)
    deff = ratio.design_effect * (ratio.units - 1) / ratio.units if ratio.units > 1 else math.nan
    effective = sample.requests / max(1.0, deff) if math.isfinite(deff) else float(sample.requests)
    return _wilson(sample.error_rate, effective, confidence)


def arm_summary(sample: ArmSample, confidence: float) -> dict[str, Any]:
    """One arm over one window: requests, users, error rate with its interval (Wilson at the
    effective size the users give), p50/p99 latency with the interval of the p99, feedback
    counts — the numbers the operations page draws."""
    return {
        "version": sample.version,
        "requests": sample.requests,
        "users": sample.users,
        "errors": sample.errors,
        "error_rate": _finite_or_none(sample.error_rate),
        "error_rate_ci": _error_interval(sample, confidence),
        **_latency_summary(sample.latencies_ms, confidence),
        "impressions": sample.impressions,
        "clicks": sample.clicks,
    }


def step_record(
    step: int, stable: ArmSample, candidate: ArmSample, result: CanaryResult, settings: CanarySection
) -> dict[str, Any]:
    """What one canary step found: the verdict, each metric, and both arms with their intervals
    (at ``1 - alpha``). Written to the ledger as a ``canary-analysis`` entry's details."""
    confidence = 1 - settings.alpha
    return {
        "step": step,
        **result.to_dict(),
        "confidence": confidence,
        "arms": {"stable": arm_summary(stable, confidence), "candidate": arm_summary(candidate, confidence)},
    }
