"""Exact against sampled drift tests: what exact mode costs, and how far the sampled mode lands.

    python -m benchmarks.drift_sampling [--sim-runs 10]   # docs/benchmarks.md, "Data checks"

- cost: the time to profile a reference of n rows and test a current table of
  n rows, one numeric column, exactly (every value sorted) and sampled (the
  stored profile's 10,000 order statistics, 200,000 random current rows);
- error: on a normal column of ``SIM_ROWS`` rows per side shifted by δσ, the
  sampled mode's normalised Wasserstein distance and Kolmogorov–Smirnov
  p-value against the exact ones over many runs, and how often the verdict
  (distance ≥ 0.1 and p < 0.05) differs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from benchmarks._env import environment_header, load_line
from conveyor.config import DriftSection
from conveyor.data import build_profile, detect_drift

COST_SIZES = (100_000, 300_000, 1_000_000, 2_000_000)
SIM_ROWS = 500_000
SHIFTS = (0.0, 0.05, 0.08, 0.1, 0.12, 0.2)
SETTINGS = DriftSection()


def _best_of(repeats: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def print_exact_cost(repeats: int = 3) -> None:
    from scipy import stats  # noqa: F401  (imported before the clock starts: ~1 s, more under load)

    print(f"\n### Cost of exact mode: profile + tests, one numeric column (best of {repeats})\n")
    head = [
        "rows per side",
        "exact: profile (s)",
        "exact: tests (s)",
        "sampled: profile (s)",
        "sampled: tests (s)",
    ]
    print("| " + " | ".join(head) + " |")
    print("|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for n in COST_SIZES:
        ref = pl.DataFrame({"x": rng.normal(size=n)})
        cur = pl.DataFrame({"x": rng.normal(0.05, 1, n)})
        exact = build_profile(ref, sample_size=None)
        sketch = build_profile(ref)
        cells = [
            _best_of(repeats, lambda: build_profile(ref, sample_size=None)),  # noqa: B023
            _best_of(repeats, lambda: detect_drift(exact, cur, SETTINGS, exact_max_rows=n)),  # noqa: B023
            _best_of(repeats, lambda: build_profile(ref)),  # noqa: B023
            _best_of(repeats, lambda: detect_drift(sketch, cur, SETTINGS, exact_max_rows=0)),  # noqa: B023
        ]
        print(f"| {n:,} | " + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)


def print_sampling_error(runs: int) -> None:
    print(
        f"\n### Sampled mode against exact: normal column, {SIM_ROWS:,} rows per side, "
        f"{runs} runs per shift\n"
    )
    print(
        "| shift δσ | exact distance (mean) | sampled − exact distance: p95 of abs | max abs "
        "| exact KS p (median) | sampled KS p (median) | verdicts differ |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    worst, differ_at = 0.0, []
    for shift in SHIFTS:
        dist_exact, gaps, p_exact, p_sampled, differ = [], [], [], [], 0
        for run in range(runs):
            rng = np.random.default_rng([run, int(shift * 1000)])
            ref = pl.DataFrame({"x": rng.normal(size=SIM_ROWS)})
            cur = pl.DataFrame({"x": rng.normal(shift, 1, SIM_ROWS)})
            exact = detect_drift(build_profile(ref, sample_size=None), cur, SETTINGS).columns["x"]
            sampled = detect_drift(build_profile(ref), cur, SETTINGS, exact_max_rows=0).columns["x"]
            dist_exact.append(exact.statistic)
            gaps.append(abs(sampled.statistic - exact.statistic))
            p_exact.append(exact.p_value)
            p_sampled.append(sampled.p_value)
            differ += exact.drift != sampled.drift
        print(
            f"| {shift:g} | {np.mean(dist_exact):.4f} | {np.quantile(gaps, 0.95):.4f} | {max(gaps):.4f} "
            f"| {np.median(p_exact):.2g} | {np.median(p_sampled):.2g} | {differ}/{runs} |",
            flush=True,
        )
        worst = max(worst, *gaps)
        differ_at += [f"{differ}/{runs} at δ = {shift:g}"] if differ else []
    print(
        f"\nSampled − exact normalised Wasserstein distance: at most {worst:.4f} over all "
        f"{runs * len(SHIFTS)} runs (threshold {SETTINGS.numeric_threshold:g}); verdicts differ: "
        + (", ".join(differ_at) or "never")
        + "."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-runs", type=int, default=10, help="simulated runs per shift (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per cost cell, best shown")
    args = parser.parse_args(argv)
    command = f"python -m benchmarks.drift_sampling --sim-runs {args.sim_runs} --repeats {args.repeats}"
    print(environment_header("drift: exact and sampled modes", command=command), flush=True)
    print_exact_cost(args.repeats)
    print_sampling_error(args.sim_runs)
    print(f"\n{load_line('after')}")


if __name__ == "__main__":
    main()
