"""The paired gates hold their stated error rates, by simulation on known-answer data.

The simulation is :mod:`conveyor.evaluation._calibration` — the very one
``benchmarks/gate_calibration.py`` runs for the tables in docs/statistics.md;
here with fewer runs and 200 bootstrap resamples to stay fast.

- no regression: a candidate equal to production fails at most 5 %, one worse
  by exactly the tolerance about 5 %, one 4× the tolerance worse nearly always
  on 5,000 users;
- beat the baseline: a candidate no better than the baseline passes at most 5 %,
  one 20 % better passes nearly always on 1,000 users.
"""

from __future__ import annotations

import numpy as np
import pytest

from conveyor.evaluation._calibration import TOLERANCE, per_user_ndcg, rate, rate_ci

RESAMPLES = 200


def test_the_simulated_effects_are_the_known_answer():
    cand, prod = per_user_ndcg(np.random.default_rng(0), 1_000_000, regression=TOLERANCE)
    assert abs(prod.mean() - 0.2) < 1e-3
    assert abs(cand.mean() / prod.mean() - (1 - TOLERANCE)) < 3e-3
    assert 0.6 < np.mean(cand == prod) < 0.8  # paired: most users get the same value
    better, base = per_user_ndcg(np.random.default_rng(1), 1_000_000, lift=0.2)
    assert abs(better.mean() / base.mean() - 1.2) < 5e-3


@pytest.mark.parametrize(
    ("gate", "verdict", "n", "effect", "runs", "check"),
    [
        # an unchanged candidate fails at most 5 % (the CI's upper end)
        ("no_regression", "fail", 1_000, 0.0, 250, lambda low, high: high <= 0.05),
        # a regression of exactly the tolerance fails about 5 % (the CI includes it)
        ("no_regression", "fail", 1_000, TOLERANCE, 250, lambda low, high: low <= 0.05 <= high),
        # 4x the tolerance worse fails nearly always on 5,000 users
        ("no_regression", "fail", 5_000, 4 * TOLERANCE, 60, lambda low, high: low >= 0.9),
        # a model no better than its baseline passes at most at 5 % (the CI's lower end)
        ("beat_baseline", "pass", 1_000, 0.0, 250, lambda low, high: low <= 0.05),
        # a 20 % lift beats the baseline nearly always on 1,000 users
        ("beat_baseline", "pass", 1_000, 0.2, 60, lambda low, high: low >= 0.9),
    ],
    ids=["equal-fails<=5%", "boundary-fails~5%", "4x-regression-fails", "no-lift-passes<=5%", "lift-passes"],
)
def test_gate_error_rates(gate, verdict, n, effect, runs, check):
    count = rate(gate, verdict, n=n, effect=effect, runs=runs, resamples=RESAMPLES)
    low, high = rate_ci(count, runs)
    assert check(low, high), (
        f"{gate}: {count}/{runs} {verdict} at effect {effect} (99% CI {low:.3f}–{high:.3f})"
    )
