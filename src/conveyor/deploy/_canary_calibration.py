"""Error rates of the canary analysis, users as the unit, by simulation on known-answer data.

The one simulation behind both ``benchmarks/canary_calibration.py`` (the tables in
``docs/statistics.md``) and ``tests/deploy/test_canary_users.py`` (small, fast runs of the
same cells), as :mod:`conveyor.deploy._ab_calibration` is for the A/B test.

One analysis window with correlated requests and a known answer. ``users`` users send
requests during the window; each lands on the candidate with probability ``share``, sticky
(a uniform hash of the user id, as the router assigns them). User u:

* sends n_u = 1 + ⌊LogNormal(1, 1.2)⌋ requests (heavy-tailed: median 3, mean about 6,
  the top 1 % of users over 40 each);
* has an error propensity e_u ~ Beta(0.02, 1.98) (mean 1 %, intra-user correlation 1/3: most
  users never see an error, a few see many — a browser, an account or a payload the
  model trips on), and each request fails with probability e_u (+ ``error_points`` on the
  candidate);
* has a latency level 20 ms × LogNormal(0, 0.5) (a large history is slow every time), each
  successful answer taking level × LogNormal(0, 0.3) (× ``latency_factor`` on the candidate);
* clicks each answer with propensity c_u ~ Beta(0.5, 9.5) (mean 5 %, as the A/B simulation).

The per-user analysis (:func:`conveyor.deploy.analyse` on samples with their users, as the
canary reads them from the request log) and the per-request analysis (the same function on
the totals alone, which counts every request as its own unit: what the canary did before)
run on the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conveyor.config import CanarySection
from conveyor.deploy._canary import ArmSample, CanaryResult, CanaryVerdict, UserCounts, analyse

USERS, SHARE = 5000, 0.1
REQUESTS_LOG_MEAN, REQUESTS_LOG_SD = 1.0, 1.2
ERROR_A, ERROR_B = 0.02, 1.98  # Beta: mean 1 %, intra-user correlation 1 / (a + b + 1) = 1/3
LATENCY_MS, USER_LATENCY_SD, REQUEST_LATENCY_SD = 20.0, 0.5, 0.3
CLICK_A, CLICK_B = 0.5, 9.5
METRICS = ("error_rate", "traffic_share", "latency", "ctr")


@dataclass(frozen=True)
class Scenario:
    """One window: who is in it, and what the candidate does differently (nothing: an A/A)."""

    users: int = USERS
    share: float = SHARE
    error_points: float = 0.0  # added to every candidate user's error propensity
    latency_factor: float = 1.0  # every candidate latency multiplied by this


def draw_arm(
    rng: np.random.Generator, version: str, users: int, scenario: Scenario, candidate: bool
) -> ArmSample:
    """``users`` users of the law above, with their per-user counts."""
    requests = 1 + np.floor(rng.lognormal(REQUESTS_LOG_MEAN, REQUESTS_LOG_SD, users)).astype(np.int64)
    propensity = rng.beta(ERROR_A, ERROR_B, users) + (scenario.error_points if candidate else 0.0)
    errors = rng.binomial(requests, np.clip(propensity, 0.0, 1.0))
    ok = requests - errors
    level = LATENCY_MS * rng.lognormal(0.0, USER_LATENCY_SD, users)
    factor = scenario.latency_factor if candidate else 1.0
    owner = np.repeat(np.arange(users), ok)
    latencies = level[owner] * rng.lognormal(0.0, REQUEST_LATENCY_SD, owner.size) * factor
    clicks = rng.binomial(ok, rng.beta(CLICK_A, CLICK_B, users))
    per_user = UserCounts.of(requests, errors, _medians(owner, latencies, ok), ok[ok > 0], clicks[ok > 0])
    return ArmSample.from_users(version, per_user, latencies.tolist())


def _medians(owner: np.ndarray, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each owner's median value (owners with no value left out); ``owner`` sorted ascending."""
    order = np.lexsort((values, owner))
    ordered = values[order]
    counts = counts[counts > 0]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    middle = (ordered[starts + (counts - 1) // 2] + ordered[starts + counts // 2]) / 2
    return np.asarray(middle, dtype=np.float64)


def per_request(sample: ArmSample) -> ArmSample:
    """The same arm as totals alone: every request its own unit (the analysis before users)."""
    return ArmSample(
        sample.version, sample.requests, sample.errors, sample.latencies_ms, sample.impressions, sample.clicks
    )


@dataclass(frozen=True)
class Window:
    """What each analysis says about one simulated window."""

    users: CanaryResult  # the user as the unit (the canary's analysis)
    requests: CanaryResult  # every request as its own unit (the analysis before)


def window(seed: int, scenario: Scenario, settings: CanarySection) -> Window:
    """One window of ``scenario``, judged by both analyses at the configured share."""
    rng = np.random.default_rng(seed)
    on_candidate = int(rng.binomial(scenario.users, scenario.share))
    stable = draw_arm(rng, "1", scenario.users - on_candidate, scenario, candidate=False)
    candidate = draw_arm(rng, "2", on_candidate, scenario, candidate=True)
    return Window(
        analyse(stable, candidate, settings, expected_share=scenario.share),
        analyse(per_request(stable), per_request(candidate), settings, expected_share=scenario.share),
    )


def failed(result: CanaryResult) -> bool:
    return result.verdict is CanaryVerdict.FAIL


def significant(result: CanaryResult, metric: str, alpha: float) -> bool:
    """Whether ``metric``'s p-value fell below its Bonferroni share of ``alpha`` (its effect aside)."""
    tested = len(result.metrics)
    return any(
        m.name == metric and m.p_value is not None and m.p_value < alpha / tested for m in result.metrics
    )


__all__ = ["METRICS", "Scenario", "Window", "draw_arm", "failed", "per_request", "significant", "window"]
