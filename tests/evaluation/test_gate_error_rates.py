"""The no-regression gate holds its stated error rate, by simulation on known-answer data.

The gate (``paired_difference`` then ``regression_gate``, called as ``conveyor
evaluate`` calls them) fails when the one-sided 95 % bound of the shortfall
exceeds the tolerance. So: a candidate equal to production fails rarely (at most
5 %), one worse by exactly the tolerance fails about 5 % of the time, and one
worse by 4× the tolerance fails nearly always on 5,000 held-out users.

Per-user NDCG@10 (known answer): user i hits with propensity u_i ~ Beta(1, 1),
scores Beta(2, 3) on a hit, 0 on a miss (mean 0.2). The candidate keeps
production's value for 70 % of users and redraws the rest from the same law;
a regression r zeroes a random share r of its users, so its true mean is exactly
(1 − r) × production's — r = 0.02 is the default relative tolerance.
``benchmarks/gate_calibration.py`` makes the full tables (1,000 resamples).
To stay fast these runs use 200 bootstrap resamples.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from conveyor.evaluation import Scored, paired_difference, regression_gate

METRIC = "ndcg_at_10"
TOLERANCE = 0.02
RESAMPLES = 200


def per_user_ndcg(rng: np.random.Generator, n: int, regression: float) -> tuple[np.ndarray, np.ndarray]:
    propensity = rng.beta(1.0, 1.0, n)

    def draw() -> np.ndarray:
        return (rng.random(n) < propensity) * rng.beta(2.0, 3.0, n)

    production = draw()
    candidate = np.where(rng.random(n) < 0.7, production, draw())
    return np.where(rng.random(n) < regression, 0.0, candidate), production


def scored(values: np.ndarray) -> Scored:
    return Scored(
        metrics={METRIC: float(values.mean())},
        units=values.size,
        statistic=lambda _metric, idx: float(np.mean(values[idx])),
    )


def failures(n: int, regression: float, runs: int) -> int:
    failed = 0
    for seed in range(runs):
        cand, prod = per_user_ndcg(np.random.default_rng([seed, n, int(regression * 1e4)]), n, regression)
        candidate, production = scored(cand), scored(prod)
        gate = regression_gate(
            metric=METRIC,
            candidate=candidate.metrics[METRIC],
            production=production.metrics[METRIC],
            difference=paired_difference(METRIC, candidate, production, resamples=RESAMPLES, seed=seed),
            tolerance=TOLERANCE,
            mode="relative",
            higher_is_better=True,
            production_version="1",
        )
        failed += gate.failed
    return failed


def ci99(failed: int, runs: int) -> tuple[float, float]:
    ci = stats.binomtest(failed, runs).proportion_ci(confidence_level=0.99, method="exact")
    return ci.low, ci.high


def test_the_simulated_regression_is_the_known_answer():
    cand, prod = per_user_ndcg(np.random.default_rng(0), 1_000_000, TOLERANCE)
    assert abs(prod.mean() - 0.2) < 1e-3
    assert abs(cand.mean() / prod.mean() - (1 - TOLERANCE)) < 3e-3
    assert 0.6 < np.mean(cand == prod) < 0.8  # paired: most users get the same value


def test_candidate_equal_to_production_fails_below_five_percent():
    runs = 250
    failed = failures(1_000, 0.0, runs)
    low, high = ci99(failed, runs)
    assert high <= 0.05, f"{failed}/{runs} equal candidates failed (99% CI {low:.3f}–{high:.3f})"


def test_regression_of_exactly_the_tolerance_fails_at_about_five_percent():
    runs = 250
    failed = failures(1_000, TOLERANCE, runs)
    low, high = ci99(failed, runs)
    assert low <= 0.05 <= high, f"{failed}/{runs} boundary candidates failed (99% CI {low:.3f}–{high:.3f})"


def test_regression_of_four_times_the_tolerance_fails_on_5000_users():
    runs = 60
    failed = failures(5_000, 4 * TOLERANCE, runs)
    low, _ = ci99(failed, runs)
    assert low >= 0.9, f"only {failed}/{runs} candidates 8% worse failed the gate"
