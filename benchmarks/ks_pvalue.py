"""The Kolmogorov–Smirnov p-value above scipy's ``kstwo`` range: accuracy and cost.

    python -m benchmarks.ks_pvalue       # docs/statistics.md, "Drift" (the tests are scipy's)

``conveyor.data`` takes the two-sample KS p-value from ``scipy.stats.kstwo.sf`` with scipy's
rounded effective size n up to 10,000 (scipy's own asymptotic branch), and above it from the
limiting Kolmogorov distribution with Stephens' correction,
``kstwobign.sf((√n + 0.12 + 0.11/√n)·D)``. This prints, for effective sizes n and target
p-values p, the statistic D where ``kstwo.sf(D, n) = p`` and how far the corrected limit
lands from it (relative error), then what one ``kstwo.sf`` call costs at a large n — the
reason for the switch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from benchmarks._env import environment_header, load_line

SIZES = (10_000, 30_000, 100_000)
P_VALUES = (0.1, 0.01, 1e-3, 1e-5)
SLOW_N = 500_000


def stephens(d: float, n: float) -> float:
    """The p-value ``conveyor.data`` uses above scipy's kstwo range."""
    return float(stats.kstwobign.sf((np.sqrt(n) + 0.12 + 0.11 / np.sqrt(n)) * d))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    print(
        environment_header("KS p-value above scipy's kstwo range", command="python -m benchmarks.ks_pvalue")
    )
    print("\n### Limiting distribution with Stephens' correction against scipy's kstwo.sf\n")
    print("| effective n | " + " | ".join(f"p = {p:g}: relative error" for p in P_VALUES) + " |")
    print("|---:|" + "---:|" * len(P_VALUES))
    worst = dict.fromkeys(P_VALUES, 0.0)
    for n in SIZES:
        cells = []
        for p in P_VALUES:
            # the statistic D where kstwo.sf(D, n) = p (scipy's own inverse)
            d = float(stats.kstwo.isf(p, n))
            exact = float(stats.kstwo.sf(d, n))
            error = abs(stephens(d, n) - exact) / exact
            worst[p] = max(worst[p], error)
            cells.append(f"{error:.2%}")
        print(f"| {n:,} | " + " | ".join(cells) + " |", flush=True)
    d = float(stats.kstwobign.isf(1e-5)) / np.sqrt(SLOW_N)
    start = time.perf_counter()
    stats.kstwo.sf(d, SLOW_N)
    slow = time.perf_counter() - start
    start = time.perf_counter()
    stephens(d, SLOW_N)
    fast = time.perf_counter() - start
    print(
        f"\nOne p-value near 1e-5 at n = {SLOW_N:,}: scipy's kstwo.sf {slow:.2f} s, "
        f"the corrected limit {fast * 1e3:.2f} ms."
    )
    print(
        "Largest relative error over these n: "
        + ", ".join(f"{worst[p]:.2%} at p = {p:g}" for p in P_VALUES)
        + "."
    )
    print(f"\n{load_line('after')}")


if __name__ == "__main__":
    main()
