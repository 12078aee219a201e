"""False-alarm and power tables of Conveyor's drift decisions, by simulation.

    python -m benchmarks.drift_calibration            # the tables in docs/statistics.md ("Drift")
    python -m benchmarks.drift_calibration --seeds 40 # tighter estimates, slower

Each run draws a reference and a current table from the same distributions
(false alarms) or with a shift (power), profiles the reference, and counts
the columns flagged. Numeric columns are normal, exponential and rounded
exponential (ties), all with σ = 1, so a shift of δ is δσ. Categorical
columns have 10 to 50 categories; "tilt" t re-weights category i of k by
1 + t·i/(k−1).

Nullable columns (normal and categorical, null rates 1–30 %) add the
null-rate test (two-proportion p-value, Cohen's h against 0.1) to the false
alarms; the null-rate power table moves a column's null rate from p₀ to p₁
(the issue's case: 1.9 % → 5.1 %).

For contrast, the categorical table also counts what a goodness-of-fit
chi-square does — current counts tested against the reference *frequencies
taken as exact*, as Evidently's ``chisquare`` test does — on the same data.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import polars as pl
from scipy import stats

from benchmarks._env import environment_header, load_line
from conveyor.config import DriftMethod, DriftSection
from conveyor.data import build_profile, detect_drift

SIZES = (1_000, 10_000, 100_000)
SHIFTS = (0.0, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3)
TILTS = (0.0, 0.5, 1.0, 1.3, 1.6, 2.0, 3.0)
CATEGORIES = (10, 20, 30, 40, 50)
NULL_RATES = (0.01, 0.05, 0.3)  # nullable columns: normal with these null rates, categorical with 2 % / 20 %
NULL_CHANGES = ((0.0, 0.005), (0.019, 0.025), (0.019, 0.035), (0.019, 0.051), (0.3, 0.33), (0.3, 0.35))
DISTANCE = DriftSection()
PVALUE = DriftSection(method=DriftMethod.PVALUE)


def numeric_frame(rng: np.random.Generator, n: int, shift: float) -> pl.DataFrame:
    cols = {}
    for i in range(9):
        x = rng.normal(size=n) if i % 3 == 0 else rng.exponential(size=n)
        if i % 3 == 2:
            x = np.round(x, 1)
        cols[f"num{i}"] = x + shift
    return pl.DataFrame(cols)


def categorical_frame(rng: np.random.Generator, n: int, tilt: float) -> pl.DataFrame:
    cols = {}
    for k in CATEGORIES:
        p = 1 + tilt * np.arange(k) / (k - 1)
        cols[f"cat{k}"] = np.array([f"c{j:02d}" for j in range(k)])[rng.choice(k, n, p=p / p.sum())]
    return pl.DataFrame(cols)


def _nulls(rng: np.random.Generator, values: np.ndarray, rate: float) -> pl.Series:
    return pl.Series(values).set(pl.Series(rng.random(len(values)) < rate), None)


def nullable_frame(rng: np.random.Generator, n: int, extra: float) -> pl.DataFrame:
    """Five nullable columns; ``extra`` adds to every null rate."""
    cols = {f"num_null{r:g}": _nulls(rng, rng.normal(size=n), r + extra) for r in NULL_RATES}
    levels = np.array([f"c{j}" for j in range(10)])
    for r in (0.02, 0.2):
        cols[f"cat_null{r:g}"] = _nulls(rng, levels[rng.choice(10, n)], r + extra)
    return pl.DataFrame(cols)


def null_change_rate(p0: float, p1: float, n: int, seeds: int) -> float:
    """Share of runs whose null-rate test flags a normal column going from null rate p0 to p1."""
    flagged = 0
    for seed in range(seeds):
        rng = np.random.default_rng([seed, n, int(p1 * 1e4)])
        ref = pl.DataFrame({"x": _nulls(rng, rng.normal(size=n), p0)})
        cur = pl.DataFrame({"x": _nulls(rng, rng.normal(size=n), p1)})
        flagged += detect_drift(build_profile(ref), cur, DISTANCE).columns["x"].null_rate_drift
    return flagged / seeds


def goodness_of_fit_rate(ref: pl.DataFrame, cur: pl.DataFrame, alpha: float) -> tuple[int, int]:
    """Columns flagged by a chi-square goodness-of-fit test with reference frequencies as exact."""
    flagged = 0
    for c in ref.columns:
        r = ref.get_column(c).value_counts().sort(c)
        k = cur.get_column(c).value_counts().sort(c)
        joined = r.join(k, on=c, how="full", coalesce=True).fill_null(0)
        ref_counts = joined.get_column("count").to_numpy().astype(float)
        cur_counts = joined.get_column("count_right").to_numpy().astype(float)
        expected = ref_counts / ref_counts.sum() * cur_counts.sum()
        keep = expected > 0
        p = stats.chisquare(
            cur_counts[keep], expected[keep] * cur_counts[keep].sum() / expected[keep].sum()
        ).pvalue
        flagged += p < alpha
    return flagged, len(ref.columns)


def rates(
    make: Callable[[np.random.Generator, int, float], pl.DataFrame], n: int, effect: float, seeds: int
) -> dict[str, float]:
    counts = {"distance": 0, "pvalue": 0, "gof": 0, "total": 0, "statistic": 0.0}
    for seed in range(seeds):
        rng = np.random.default_rng(seed * 7919 + n)
        ref, cur = make(rng, n, 0.0), make(rng, n, effect)
        profile = build_profile(ref)
        dist = detect_drift(profile, cur, DISTANCE)
        counts["distance"] += len(dist.drifted_columns)
        counts["pvalue"] += len(detect_drift(profile, cur, PVALUE).drifted_columns)
        counts["statistic"] += sum(c.statistic for c in dist.columns.values())
        counts["total"] += len(dist.columns)
        if make is categorical_frame:
            counts["gof"] += goodness_of_fit_rate(ref, cur, DISTANCE.alpha)[0]
    total = counts["total"]
    return {k: v / total for k, v in counts.items() if k != "total"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12, help="simulated runs per cell (default 12)")
    args = parser.parse_args(argv)
    seeds = args.seeds
    print(
        environment_header(
            "drift calibration", command=f"python -m benchmarks.drift_calibration --seeds {seeds}"
        )
    )

    print(f"\n### False alarms: unshifted columns flagged ({seeds} runs per cell; alpha = 0.05)\n")
    print("| columns | rows | distance mode (default) | p-value mode (BH) | goodness-of-fit chi-square |")
    print("|---|---:|---:|---:|---:|")
    for kind, make in (
        ("numeric (9 per run)", numeric_frame),
        ("categorical, 10–50 categories", categorical_frame),
        ("nullable, null rates 1–30 % (5 per run; incl. the null-rate test)", nullable_frame),
    ):
        for n in SIZES:
            r = rates(make, n, 0.0, seeds)
            gof = f"{r['gof']:.1%}" if make is categorical_frame else "–"
            print(f"| {kind} | {n:,} | {r['distance']:.1%} | {r['pvalue']:.1%} | {gof} |")

    print(f"\n### Power, numeric: columns flagged by a δσ shift (distance mode; {seeds} runs × 9 columns)\n")
    print(
        "| δ | " + " | ".join(f"{n:,} rows" for n in SIZES) + f" | mean statistic at {SIZES[0]:,} rows "
        f"| mean statistic at {SIZES[-1]:,} rows |"
    )
    print("|---:|" + "---:|" * len(SIZES) + "---:|---:|")
    for shift in SHIFTS:
        cells = [rates(numeric_frame, n, shift, seeds) for n in SIZES]
        print(
            f"| {shift:g} | "
            + " | ".join(f"{c['distance']:.0%}" for c in cells)
            + f" | {cells[0]['statistic']:.3f} | {cells[-1]['statistic']:.3f} |"
        )

    print(
        f"\n### Power, categorical: columns flagged by a tilt t (distance mode; {seeds} runs × 5 columns)\n"
    )
    print("| t | " + " | ".join(f"{n:,} rows" for n in SIZES) + " | mean JS distance at 100,000 rows |")
    print("|---:|" + "---:|" * len(SIZES) + "---:|")
    for tilt in TILTS:
        cells = [rates(categorical_frame, n, tilt, seeds) for n in SIZES]
        print(
            f"| {tilt:g} | "
            + " | ".join(f"{c['distance']:.0%}" for c in cells)
            + f" | {cells[-1]['statistic']:.3f} |"
        )

    runs = 4 * seeds
    print(f"\n### Null rates: a column flagged by a change of its null rate p₀ → p₁ ({runs} runs per cell)\n")
    print("| p₀ → p₁ | Cohen's h | " + " | ".join(f"{n:,} rows" for n in SIZES) + " |")
    print("|---|---:|" + "---:|" * len(SIZES))
    for p0, p1 in NULL_CHANGES:
        h = 2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p0))
        cells = " | ".join(f"{null_change_rate(p0, p1, n, runs):.0%}" for n in SIZES)
        print(f"| {p0:.1%} → {p1:.1%} | {h:.3f} | {cells} |")
    print(f"\n{load_line('after')}")


if __name__ == "__main__":
    main()
