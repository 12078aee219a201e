"""Inferred schemas against fresh clean data and planted violations, by simulation.

    python -m benchmarks.schema_inference              # the table in docs/statistics.md ("Schema inference")
    python -m benchmarks.schema_inference --runs 1000  # tighter estimates, slower

For each reference size N and each column distribution, a run draws N rows,
infers a schema (``conveyor schema infer``'s :func:`infer_schema`), draws a
fresh batch of N rows from the same distributions and validates it: a failure
on clean data is a false alarm. Then it plants one violation of each kind in
another fresh batch and checks that the rule that should catch it does:

- out of range: one value far outside (normal: mean + 20σ; lognormal and
  counts: −1, below their physical minimum 0);
- unseen category: a level never seen, in 5 % of the rows;
- null in a non-null column: one null;
- duplicate key: one key value repeated;
- wrong type: one text value ("n/a") in the numeric column.

Row-count and freshness rules are left out (the batches have N rows and no
timestamps).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np
import polars as pl

from benchmarks._env import environment_header, load_line
from conveyor.data import infer_schema, validate_table

SIZES = (200, 1_000, 5_000, 20_000)
RARE_LEVELS = 20  # categorical: 5 common levels and 20 rare ones of 0.1 % each
Draw = Callable[[np.random.Generator, int, int], pl.Series]


def _normal(rng: np.random.Generator, n: int, start: int) -> pl.Series:
    return pl.Series("x", rng.normal(50, 10, n).round(2))


def _lognormal(rng: np.random.Generator, n: int, start: int) -> pl.Series:
    return pl.Series("x", np.exp(rng.normal(3, 1, n)).round(2))


def _counts(rng: np.random.Generator, n: int, start: int) -> pl.Series:
    return pl.Series("x", rng.negative_binomial(2, 0.3, n).astype(np.int64))  # overdispersed counts


def _categorical(rng: np.random.Generator, n: int, start: int) -> pl.Series:
    levels = [f"L{i}" for i in range(5 + RARE_LEVELS)]
    p = np.array([0.4, 0.25, 0.15, 0.1, 0.08] + [0.001] * RARE_LEVELS)
    return pl.Series("x", np.array(levels)[rng.choice(len(levels), n, p=p / p.sum())])


def _nullable(rng: np.random.Generator, n: int, start: int) -> pl.Series:
    x = rng.normal(0, 1, n).round(3)
    return pl.Series("x", x).set(pl.Series(rng.random(n) < 0.05), None)


def _key(rng: np.random.Generator, n: int, start: int) -> pl.Series:
    return pl.Series("x", np.arange(start, start + n, dtype=np.int64))  # order ids keep growing


DISTRIBUTIONS: dict[str, Draw] = {
    "normal": _normal,
    "lognormal (long tail)": _lognormal,
    "integer counts (negative binomial)": _counts,
    "categorical, 5 common + 20 rare levels (0.1 % each)": _categorical,
    "nullable normal (5 % nulls)": _nullable,
    "integer key (all distinct)": _key,
}


# the planted out-of-range value: 20σ above the mean, or −1 below a physical minimum of 0
OUT_OF_RANGE = {_normal: 250.0, _nullable: 20.0, _lognormal: -1.0, _counts: -1.0, _key: -1.0}


def _plant(kind: str, batch: pl.DataFrame, rng: np.random.Generator, draw: Draw) -> pl.DataFrame | None:
    """``batch`` with one violation of ``kind``; None where the kind does not apply to this column."""
    x = batch.get_column("x")
    i = int(rng.integers(batch.height))
    if kind == "out of range" and draw in OUT_OF_RANGE:
        return batch.with_columns(x.cast(pl.Float64).scatter(i, OUT_OF_RANGE[draw]).cast(x.dtype))
    if kind == "unseen category" and x.dtype == pl.String:
        rows = np.flatnonzero(rng.random(batch.height) < 0.05)
        return batch.with_columns(x.scatter(rows, "never-seen"))
    if kind == "null in non-null" and x.null_count() == 0:
        return batch.with_columns(x.scatter(i, None))
    if kind == "duplicate key" and x.dtype.is_integer() and x.n_unique() == x.len():
        return batch.with_columns(x.scatter(i, x[(i + 1) % batch.height]))
    if kind == "wrong type" and x.dtype.is_numeric():
        return batch.with_columns(x.cast(pl.String).scatter(i, "n/a"))
    return None


EXPECTED_RULE = {
    "out of range": {"min", "max"},
    "unseen category": {"categories"},
    "null in non-null": {"not_null"},
    "duplicate key": {"unique"},
    "wrong type": {"type"},
}


def _failures(batch: pl.DataFrame, schema) -> set[str]:  # type: ignore[no-untyped-def]
    return {
        f.rule for f in validate_table(batch, schema).failures if f.rule not in ("row_count", "freshness")
    }


def simulate(draw: Draw, n: int, runs: int, seed: int = 0) -> dict[str, tuple[int, int]]:
    """Per outcome, (runs where it happened, runs where it applied): "clean" is a false alarm, the
    planted kinds are catches."""
    out = {"clean": [0, 0], **{k: [0, 0] for k in EXPECTED_RULE}}
    for run in range(runs):
        rng = np.random.default_rng([seed, n, run])
        schema = infer_schema(pl.DataFrame(draw(rng, n, 0)))
        fresh = pl.DataFrame(draw(rng, n, n))
        out["clean"][0] += bool(_failures(fresh, schema))
        out["clean"][1] += 1
        for kind, rules in EXPECTED_RULE.items():
            planted = _plant(kind, pl.DataFrame(draw(rng, n, n)), rng, draw)
            if planted is not None:
                out[kind][0] += bool(_failures(planted, schema) & rules)
                out[kind][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def simulate_table(n: int, runs: int, seed: int = 1) -> tuple[int, int]:
    """(runs whose fresh batch failed, runs) for a table holding all the columns above at once."""

    def table(rng: np.random.Generator, start: int) -> pl.DataFrame:
        return pl.DataFrame(
            [draw(rng, n, start).alias(f"c{i}") for i, draw in enumerate(DISTRIBUTIONS.values())]
        )

    failed = 0
    for run in range(runs):
        rng = np.random.default_rng([seed, n, run])
        schema = infer_schema(table(rng, 0))
        failed += bool(_failures(table(rng, n), schema))
    return failed, runs


def upper95(k: int, n: int) -> float:
    """The one-sided 95 % upper bound of a rate seen k times in n runs (Wilson score)."""
    if n == 0:
        return math.nan
    z = 1.645
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + half) / (1 + z * z / n)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="simulated runs per cell (default 300)")
    args = parser.parse_args(argv)
    runs = args.runs
    kinds = list(EXPECTED_RULE)
    print(
        environment_header("schema inference", command=f"python -m benchmarks.schema_inference --runs {runs}")
    )
    print(f"\n### Inferred schemas on fresh clean batches and planted violations ({runs} runs per cell)\n")
    print(
        "| distribution | N | clean batches failed (95 % upper bound) | "
        + " | ".join(f"{k} caught" for k in kinds)
        + " |"
    )
    print("|---|---:|---:|" + "---:|" * len(kinds))
    for name, draw in DISTRIBUTIONS.items():
        for n in SIZES:
            res = simulate(draw, n, runs)
            k, total = res["clean"]
            cells = [f"{res[kind][0] / res[kind][1]:.0%}" if res[kind][1] else "–" for kind in kinds]
            print(
                f"| {name} | {n:,} | {k / total:.1%} (≤ {upper95(k, total):.1%}) | "
                + " | ".join(cells)
                + " |"
            )
    for n in SIZES:
        k, total = simulate_table(n, runs)
        dashes = " | ".join("–" for _ in kinds)
        rate = f"{k / total:.1%} (≤ {upper95(k, total):.1%})"
        print(f"| **all six columns in one table** | {n:,} | {rate} | {dashes} |")
    print(f"\n{load_line('after')}")


if __name__ == "__main__":
    main()
