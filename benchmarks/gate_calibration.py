"""Error-rate tables of the paired quality gates (no-regression, beat-baseline), by simulation.

    python -m benchmarks.gate_calibration              # the tables in docs/statistics.md
    python -m benchmarks.gate_calibration --runs 500   # tighter estimates, slower

The simulation itself — known-answer per-user NDCG@10, a candidate paired with
its reference, a planted regression or lift — lives in ONE place,
:mod:`conveyor.evaluation._calibration`, which the test
``tests/evaluation/test_gate_error_rates.py`` runs too (fewer runs). Each
simulated evaluation asks the gate exactly what ``conveyor evaluate`` asks it:
``paired_difference`` (1,000 paired bootstrap resamples, 90 % two-sided =
one-sided 95 %) then ``regression_gate`` (``ndcg_at_10``, tolerance 0.02,
``relative``) or ``baseline_gate``.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._env import environment_header, load_line
from conveyor.evaluation._calibration import MEAN_NDCG, TOLERANCE, Gate, rate_ci, simulate

SIZES = (200, 500, 1_000, 2_000)  # held-out users (model.eval_users caps them at 10,000)
REGRESSIONS = (0.0, TOLERANCE, 2 * TOLERANCE, 4 * TOLERANCE)
LIFTS = (0.0, 0.05, 0.10, 0.20)


def _cell(count: int, runs: int) -> str:
    low, high = rate_ci(count, runs)
    return f"{count / runs:.1%} ({low:.1%}–{high:.1%})"


def _table(gate: Gate, verdict: str, effects: tuple[float, ...], labels: dict[float, str], args) -> None:
    sizes: list[int] = args.sizes
    print("| true effect | " + " | ".join(f"{n:,} users" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    widths: dict[int, float] = {}
    for effect in effects:
        row = []
        for n in sizes:
            sims = [simulate(gate, n=n, effect=effect, seed=s) for s in range(args.runs)]
            row.append(_cell(sum(s.gate.verdict == verdict for s in sims), args.runs))
            if effect == 0.0:
                widths[n] = float(np.mean([s.half_width for s in sims]))
        print(f"| {labels.get(effect, f'{effect:.0%}')} | " + " | ".join(row) + " |")
    print(
        "| one-sided 95 % bound − estimate (NDCG) | "
        + " | ".join(f"{widths[n]:.4f} ({widths[n] / MEAN_NDCG:.1%} of {MEAN_NDCG:g})" for n in sizes)
        + " |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Error-rate tables of the paired quality gates")
    parser.add_argument("--runs", type=int, default=200, help="simulated evaluations per cell")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="held-out users")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.gate_calibration --runs {} --sizes {}".format(
        args.runs, " ".join(map(str, args.sizes))
    )
    print(environment_header("quality gates calibration", command=command), flush=True)
    print(f"{args.runs} runs per cell; 99 % exact binomial CI")
    print(
        f"\n### No regression: failing rate (tolerance {TOLERANCE:g} relative, "
        f"production NDCG@10 {MEAN_NDCG:g})\n"
    )
    reg_labels = {
        0.0: "0 (false fail)",
        TOLERANCE: f"{TOLERANCE:.0%} = tolerance (boundary)",
        2 * TOLERANCE: f"{2 * TOLERANCE:.0%} = 2× tolerance (power)",
        4 * TOLERANCE: f"{4 * TOLERANCE:.0%} = 4× tolerance (power)",
    }
    _table("no_regression", "fail", REGRESSIONS, reg_labels, args)
    print(f"\n### Beat the baseline: passing rate (baseline NDCG@10 {MEAN_NDCG:g}; lift = relative)\n")
    lift_labels = {0.0: "no better (false pass)", **{x: f"+{x:.0%} lift (power)" for x in LIFTS[1:]}}
    _table("beat_baseline", "pass", LIFTS, lift_labels, args)
    print(f"\n{load_line('after')}")


if __name__ == "__main__":
    main()
