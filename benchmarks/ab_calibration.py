"""False-winner and power tables of the A/B test, users as the unit, by simulation.

    python -m benchmarks.ab_calibration              # the tables in docs/statistics.md (about a minute)
    python -m benchmarks.ab_calibration --runs 5000  # tighter estimates, slower

The simulation — correlated users with a known answer, each experiment planned as
``conveyor ab start`` plans it and decided as ``conveyor ab conclude`` decides it, the
impression-level test beside it, peeking at the always-valid and the fixed-horizon p-values —
is :mod:`conveyor.deploy._ab_calibration`, the one ``tests/deploy/test_ab_statistics.py`` runs
in small cells.
"""

from __future__ import annotations

import argparse

from scipy import stats

from benchmarks._env import environment_header, load_line
from conveyor.deploy._ab_calibration import (
    ALPHA,
    BASE,
    CONCENTRATION,
    LOOKS,
    MDE,
    MEAN_IMPRESSIONS,
    POWER,
    RATIO,
    baseline,
    experiment,
    peeking,
    plan,
)


def rate(hits: int, runs: int) -> str:
    ci = stats.binomtest(hits, runs).proportion_ci(0.99)
    return f"{hits / runs:.1%} ({ci.low:.1%}–{ci.high:.1%})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A/A and power tables of the per-user A/B test")
    parser.add_argument("--runs", type=int, default=2000, help="simulated experiments per row")
    args = parser.parse_args(argv)
    runs: int = args.runs
    print(environment_header("A/B calibration", command=f"python -m benchmarks.ab_calibration --runs {runs}"))
    need = plan()
    if need is None:
        raise SystemExit("the baseline gave no plan")
    design_effect = baseline().design_effect
    rows = {}
    for lift in (0.0, MDE):
        outcomes = [experiment(1_000_000 * (lift > 0) + seed, need, lift) for seed in range(runs)]
        rows[lift] = {
            "users_significant": sum(o.users_significant for o in outcomes),
            "users_promote": sum(o.promoted for o in outcomes),
            "impressions_significant": sum(o.impressions_significant for o in outcomes),
        }
    peeks = [peeking(2_000_000 + seed, need) for seed in range(max(runs // 4, 1))]

    print(
        f"\n### A/B test on correlated impressions ({runs} experiments per row; 99 % exact binomial CI)\n\n"
        f"{load_line('after')}\n\n"
        f"Users: propensity Beta({BASE * CONCENTRATION:g}, {(1 - BASE) * CONCENTRATION:g}) "
        f"(mean CTR {BASE:g}), 1 + Poisson({MEAN_IMPRESSIONS - 1}) impressions each; "
        f"baseline design effect {design_effect:.2f}. Plan (MDE {MDE:.0%}, alpha {ALPHA}, "
        f"power {POWER}, variant {RATIO:.0%}): {need['variant']:,} variant and {need['control']:,} "
        "control users.\n"
    )
    print("| test (unit) | A/A: significant (target ≤ 5 %) | true +20 % lift: promoted (target 80 %) |")
    print("|---|---:|---:|")
    aa, lift = rows[0.0], rows[MDE]
    print(
        f"| delta method, users (`conveyor ab conclude`) | {rate(aa['users_significant'], runs)} "
        f"| {rate(lift['users_promote'], runs)} |"
    )
    print(
        f"| two-proportion z, impressions (before) | {rate(aa['impressions_significant'], runs)} "
        f"| {rate(lift['impressions_significant'], runs)} (significant) |"
    )
    print(
        f"| A/A promoted by the decision (one-sided, target ≤ 2.5 %) | {rate(aa['users_promote'], runs)} | |"
    )
    print(
        f"\n{len(peeks)} A/A experiments, {LOOKS} looks each: stopping at the first fixed-horizon "
        f"p < {ALPHA} declares a winner in {rate(sum(n for n, _ in peeks), len(peeks))}; "
        f"at the first always-valid p < {ALPHA} in {rate(sum(v for _, v in peeks), len(peeks))}."
    )


if __name__ == "__main__":
    main()
