"""False-fail and power tables of the no-regression quality gate, by simulation.

    python -m benchmarks.gate_calibration              # the tables in docs/statistics.md (about 7 minutes)
    python -m benchmarks.gate_calibration --runs 500   # tighter estimates, slower

Each run draws per-user NDCG@10 values for a production model and a candidate
scored on the same held-out users, and asks the gate exactly what
``conveyor evaluate`` asks it: :func:`conveyor.evaluation.paired_difference`
(1,000 paired bootstrap resamples, 90 % two-sided = one-sided 95 %) then
:func:`conveyor.evaluation.regression_gate` with the default setting
(``ndcg_at_10``, tolerance 0.02, ``relative``).

Per-user values (known answer): user i has a hit propensity u_i ~ Beta(1, 1);
a model's NDCG for the user is 0 on a miss (probability 1 − u_i) and
Beta(2, 3) on a hit, so the mean NDCG is 0.2 and about half the users score 0.
The candidate keeps production's value for 70 % of users (same top-k) and
draws anew from the same distribution for the rest — equal in distribution,
paired noise only. A true regression r then drops a random share r of the
candidate's users to 0, so the candidate's true mean is exactly (1 − r) × the
production mean: r = 0.02 is a regression of exactly the tolerance.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from conveyor.evaluation import Scored, paired_difference, regression_gate

METRIC = "ndcg_at_10"
TOLERANCE = 0.02  # the default gates.no_regression.tolerance (relative)
SIZES = (200, 1_000, 5_000, 10_000)  # 10,000: the default model.eval_users
REGRESSIONS = (0.0, TOLERANCE, 2 * TOLERANCE, 4 * TOLERANCE)
SHARED = 0.7  # share of users for whom the candidate returns production's list


def per_user_ndcg(rng: np.random.Generator, n: int, regression: float) -> tuple[np.ndarray, np.ndarray]:
    """(candidate, production) per-user NDCG; candidate mean = (1 − regression) × production mean."""
    propensity = rng.beta(1.0, 1.0, n)

    def draw() -> np.ndarray:
        return (rng.random(n) < propensity) * rng.beta(2.0, 3.0, n)

    production = draw()
    candidate = np.where(rng.random(n) < SHARED, production, draw())
    candidate = np.where(rng.random(n) < regression, 0.0, candidate)
    return candidate, production


def scored(values: np.ndarray) -> Scored:
    """Per-unit metric values as the gate's input (the seam ``score()`` itself returns)."""
    return Scored(
        metrics={METRIC: float(values.mean())},
        units=values.size,
        statistic=lambda _metric, idx: float(np.mean(values[idx])),
    )


def gate_fails(seed: int, n: int, regression: float, resamples: int = 1000) -> tuple[bool, float]:
    """One simulated evaluation: did the gate fail, and how wide was its one-sided bound."""
    rng = np.random.default_rng([seed, n, round(regression * 1e6)])
    cand, prod = per_user_ndcg(rng, n, regression)
    candidate, production = scored(cand), scored(prod)
    difference = paired_difference(METRIC, candidate, production, resamples=resamples, seed=seed)
    gate = regression_gate(
        metric=METRIC,
        candidate=candidate.metrics[METRIC],
        production=production.metrics[METRIC],
        difference=difference,
        tolerance=TOLERANCE,
        mode="relative",
        higher_is_better=True,
        production_version="1",
    )
    return gate.failed, difference.high - difference.estimate


def rate_ci(failures: int, runs: int) -> tuple[float, float]:
    ci = stats.binomtest(failures, runs).proportion_ci(confidence_level=0.99, method="exact")
    return float(ci.low), float(ci.high)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="False-fail and power tables of the no-regression gate")
    parser.add_argument("--runs", type=int, default=200, help="simulated evaluations per cell")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="held-out users")
    args = parser.parse_args(argv)
    sizes: list[int] = args.sizes
    cells: dict[tuple[float, int], tuple[int, float]] = {}
    for n in sizes:
        for regression in REGRESSIONS:
            outcomes = [gate_fails(seed, n, regression) for seed in range(args.runs)]
            failures = sum(failed for failed, _ in outcomes)
            cells[regression, n] = failures, float(np.mean([w for _, w in outcomes]))

    print(
        f"\n### Failing rate of the no-regression gate ({args.runs} runs per cell; "
        f"tolerance {TOLERANCE:g} relative, production NDCG@10 0.2; 99 % exact binomial CI)\n"
    )
    print("| true regression | " + " | ".join(f"{n:,} users" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    labels = {0.0: "0 (false fail)", TOLERANCE: "= tolerance (boundary)"}
    for regression in REGRESSIONS:
        label = labels.get(regression, f"{regression / TOLERANCE:g}× tolerance (power)")
        row = []
        for n in sizes:
            failures, _ = cells[regression, n]
            low, high = rate_ci(failures, args.runs)
            row.append(f"{failures / args.runs:.1%} ({low:.1%}–{high:.1%})")
        print(f"| {label}: {regression:.0%} | " + " | ".join(row) + " |")
    widths = [cells[0.0, n][1] for n in sizes]
    print(
        "| one-sided 95 % bound − estimate (NDCG) | "
        + " | ".join(f"{w:.4f} ({w / 0.2:.1%} of 0.2)" for w in widths)
        + " |"
    )


if __name__ == "__main__":
    main()
