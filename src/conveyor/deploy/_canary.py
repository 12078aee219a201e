"""Canary analysis: is the candidate worse than the stable version over the same window?

Up to four metrics, each a one-sided question "is the candidate worse?":

* **error rate** — an Agresti–Caffo lower confidence bound of the difference
  candidate − stable; the metric fails when that bound exceeds the tolerated
  increase (``deploy.canary.max_error_rate_increase``).
* **latency** — a one-sided Mann–Whitney U test on the raw latency samples
  (as Kayenta does) *and* an effect size: the candidate's p99 over the
  stable's must exceed ``max_p99_ratio``. A significant but tiny shift does
  not fail the canary; a large p99 on a handful of requests does not either.
* **traffic share** — under weighted routing the candidate must answer about
  its share of the logged requests; far fewer means requests crashed before
  they could be logged.
* **online metric** — where feedback exists in both arms, a one-sided
  two-proportion test that the candidate's click-through rate is lower.

The metrics share the significance level: each is tested at alpha divided by
the number of metrics tested (Bonferroni), so the false-fail rate of a
healthy canary stays at or below alpha. With fewer than
``min_requests`` requests in either arm the result is *inconclusive*, never
*pass*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from scipy import stats

from conveyor.config import CanarySection

MIN_FEEDBACK_IMPRESSIONS = 100  # below this per arm the online metric is not tested
MIN_SHARE_RATIO = 0.8  # a candidate answering under 80 % of its share (significantly) lost requests


class CanaryVerdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ArmSample:
    """What one version did during the analysis window."""

    version: str
    requests: int
    errors: int
    latencies_ms: Sequence[float] = ()
    impressions: int = 0
    clicks: int = 0

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


def _error_metric(stable: ArmSample, candidate: ArmSample, tolerance: float, alpha: float) -> MetricResult:
    # Agresti–Caffo: add one success and one failure to each arm, then the Wald
    # interval; it keeps its coverage at 0 % and 100 % error rates, where the
    # plain Wald interval collapses to a point.
    pc = (candidate.errors + 1) / (candidate.requests + 2)
    ps = (stable.errors + 1) / (stable.requests + 2)
    se = math.sqrt(pc * (1 - pc) / (candidate.requests + 2) + ps * (1 - ps) / (stable.requests + 2))
    lower = (pc - ps) - float(stats.norm.ppf(1 - alpha)) * se
    z = ((pc - ps) - tolerance) / se
    p_value = float(stats.norm.sf(z))
    failed = lower > tolerance
    reason = (
        f"error rate {candidate.error_rate:.4f} vs stable {stable.error_rate:.4f}: "
        f"the increase is at least {lower:+.4f} at {1 - alpha:.4g} confidence"
        + (f", above the tolerated {tolerance:.4f}" if failed else f", within the tolerated {tolerance:.4f}")
    )
    return MetricResult(
        "error_rate",
        CanaryVerdict.FAIL if failed else CanaryVerdict.PASS,
        reason,
        stable.error_rate,
        candidate.error_rate,
        p_value,
        {"increase_lower_bound": lower},
    )


def _latency_metric(stable: ArmSample, candidate: ArmSample, max_ratio: float, alpha: float) -> MetricResult:
    p99_s, p99_c = _p99(stable.latencies_ms), _p99(candidate.latencies_ms)
    ratio = p99_c / p99_s if p99_s > 0 else math.inf
    test = stats.mannwhitneyu(candidate.latencies_ms, stable.latencies_ms, alternative="greater")
    p_value = float(test.pvalue)
    failed = p_value < alpha and ratio > max_ratio
    reason = (
        f"p99 {p99_c:.1f} ms vs stable {p99_s:.1f} ms (ratio {ratio:.2f}, limit {max_ratio:.2f}); "
        f"Mann–Whitney U one-sided p = {p_value:.3g}"
    )
    return MetricResult(
        "latency",
        CanaryVerdict.FAIL if failed else CanaryVerdict.PASS,
        reason,
        p99_s,
        p99_c,
        p_value,
        {"p99_ratio": ratio},
    )


def _online_metric(stable: ArmSample, candidate: ArmSample, alpha: float) -> MetricResult:
    n1, n2 = stable.impressions, candidate.impressions
    p1, p2 = stable.clicks / n1, candidate.clicks / n2
    pooled = (stable.clicks + candidate.clicks) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p_value = float(stats.norm.cdf((p2 - p1) / se)) if se > 0 else 1.0
    failed = p_value < alpha
    reason = (
        f"click-through rate {p2:.4f} vs stable {p1:.4f} "
        f"({n2} and {n1} impressions); one-sided p = {p_value:.3g}"
    )
    return MetricResult("ctr", CanaryVerdict.FAIL if failed else CanaryVerdict.PASS, reason, p1, p2, p_value)


def _share_metric(stable: ArmSample, candidate: ArmSample, expected: float, alpha: float) -> MetricResult:
    total = stable.requests + candidate.requests
    observed = candidate.requests / total
    p_value = float(stats.binomtest(candidate.requests, total, expected, alternative="less").pvalue)
    failed = p_value < alpha and observed < MIN_SHARE_RATIO * expected
    reason = (
        f"the candidate answered {observed:.3f} of the logged requests, its share is {expected:.3f} "
        f"(one-sided binomial p = {p_value:.3g})"
        + ("; the missing answers were not logged: crashes" if failed else "")
    )
    return MetricResult(
        "traffic_share",
        CanaryVerdict.FAIL if failed else CanaryVerdict.PASS,
        reason,
        1 - expected,
        observed,
        p_value,
    )


def analyse(
    stable: ArmSample, candidate: ArmSample, settings: CanarySection, *, expected_share: float | None = None
) -> CanaryResult:
    """Compare ``candidate`` with ``stable`` over one window; pass, fail or inconclusive.

    ``expected_share`` is the candidate's configured share under weighted
    routing; when given, a candidate that answers far fewer requests than its
    share fails (requests that crashed before they could be logged).
    """
    fewest = min(stable.requests, candidate.requests)
    if fewest < settings.min_requests:
        return CanaryResult(
            CanaryVerdict.INCONCLUSIVE,
            f"too few requests to judge: stable {stable.requests}, candidate {candidate.requests} "
            f"(at least {settings.min_requests} each are needed)",
            [],
        )
    have_latency = len(stable.latencies_ms) > 0 and len(candidate.latencies_ms) > 0
    have_feedback = min(stable.impressions, candidate.impressions) >= MIN_FEEDBACK_IMPRESSIONS
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
        f"shared by {tested} metric{'s' if tested > 1 else ''})",
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


def arm_summary(sample: ArmSample, confidence: float) -> dict[str, Any]:
    """One arm over one window: requests, error rate with its Wilson interval, p50/p99 latency
    with the interval of the p99, feedback counts — the numbers the operations page draws."""
    error_ci: list[float | None] = [None, None]
    if sample.requests:
        ci = stats.binomtest(sample.errors, sample.requests).proportion_ci(confidence, method="wilson")
        error_ci = [float(ci.low), float(ci.high)]
    return {
        "version": sample.version,
        "requests": sample.requests,
        "errors": sample.errors,
        "error_rate": _finite_or_none(sample.error_rate),
        "error_rate_ci": error_ci,
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
