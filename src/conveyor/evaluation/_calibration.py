"""Error rates of the paired quality gates, by simulation on known-answer data.

The one simulation behind both ``benchmarks/gate_calibration.py`` (the tables
in ``docs/statistics.md``) and ``tests/evaluation/test_gate_error_rates.py``
(small, fast runs of the same cells). Each simulated evaluation asks a gate
exactly what ``conveyor evaluate`` asks it: :func:`paired_difference` then
:func:`regression_gate` or :func:`baseline_gate`.

Per-user NDCG@10 with a known answer: user i hits with propensity
u_i ~ Beta(1, 1) and scores Beta(2, 3) on a hit, 0 on a miss (mean 0.2, about
half the users at 0). The candidate returns the reference's value for 70 % of
users (the same top-k) and draws anew from the same law for the rest: equal
in distribution, paired noise only. Then a known effect:

- a regression r zeroes a random share r of the candidate's users, so its
  mean is exactly (1 − r) × the reference's;
- a lift l gives a random share l of the candidate's users a hit
  (Beta(2, 3), mean 0.4 = twice the overall mean), so its mean is exactly
  (1 + l) × the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from conveyor.evaluation._gates import GateResult, baseline_gate, regression_gate
from conveyor.evaluation._scoring import Scored, paired_difference

METRIC = "ndcg_at_10"
TOLERANCE = 0.02  # the default gates.no_regression.tolerance (relative)
CONFIDENCE = 0.90  # two-sided: the default one-sided 95 % (evaluation.confidence)
SHARED = 0.7  # share of users for whom the candidate returns the reference's list
MEAN_NDCG = 0.2
Gate = Literal["no_regression", "beat_baseline"]


def per_user_ndcg(
    rng: np.random.Generator, n: int, *, regression: float = 0.0, lift: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(candidate, reference) per-user NDCG; candidate mean = (1 − regression + lift) × reference mean."""
    propensity = rng.beta(1.0, 1.0, n)

    def draw() -> np.ndarray:
        return (rng.random(n) < propensity) * rng.beta(2.0, 3.0, n)

    reference = draw()
    candidate = np.where(rng.random(n) < SHARED, reference, draw())
    candidate = np.where(rng.random(n) < regression, 0.0, candidate)
    candidate = np.where(rng.random(n) < lift, rng.beta(2.0, 3.0, n), candidate)
    return candidate, reference


def scored(values: np.ndarray) -> Scored:
    """Per-unit metric values as the gate's input (the seam ``score()`` itself returns)."""
    return Scored(
        metrics={METRIC: float(values.mean())},
        units=values.size,
        statistic=lambda _metric, idx: float(np.mean(values[idx])),
        per_unit={METRIC: values},
    )


@dataclass(frozen=True)
class Simulated:
    gate: GateResult
    half_width: float  # one-sided bound − estimate


def simulate(gate: Gate, *, n: int, effect: float, seed: int, resamples: int = 1000) -> Simulated:
    """One simulated evaluation of ``gate`` on ``n`` users; ``effect`` is a regression or a lift."""
    rng = np.random.default_rng([seed, n, round(effect * 1e6), gate == "beat_baseline"])
    if gate == "no_regression":
        cand, ref = per_user_ndcg(rng, n, regression=effect)
    else:
        cand, ref = per_user_ndcg(rng, n, lift=effect)
    candidate, reference = scored(cand), scored(ref)
    difference = paired_difference(
        METRIC, candidate, reference, confidence=CONFIDENCE, resamples=resamples, seed=seed
    )
    if gate == "no_regression":
        result = regression_gate(
            metric=METRIC,
            candidate=candidate.metrics[METRIC],
            production=reference.metrics[METRIC],
            difference=difference,
            tolerance=TOLERANCE,
            mode="relative",
            higher_is_better=True,
            production_version="1",
        )
    else:
        result = baseline_gate(
            METRIC, candidate.metrics[METRIC], reference.metrics[METRIC], "popularity", difference
        )
    return Simulated(result, difference.high - difference.estimate)


def rate(gate: Gate, verdict: str, *, n: int, effect: float, runs: int, resamples: int = 1000) -> int:
    """How many of ``runs`` simulated evaluations gave ``verdict``."""
    return sum(
        simulate(gate, n=n, effect=effect, seed=seed, resamples=resamples).gate.verdict == verdict
        for seed in range(runs)
    )


def rate_ci(count: int, runs: int, confidence: float = 0.99) -> tuple[float, float]:
    """Exact (Clopper–Pearson) binomial interval of a simulated rate."""
    from scipy import stats

    ci = stats.binomtest(count, runs).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)
