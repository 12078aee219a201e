"""Streaming checks (``--stream``): sketch against exact verdicts, and a dataset larger than memory.

Printed by ``python -m benchmarks.sketch_drift`` (docs/benchmarks.md, "Past one machine").

1. The KLL sketch's stated error (``kll_rank_error``) and the largest rank error measured on
   every sketched quantile of a normal column.
2. Verdict agreement: a normal column of ``SIM_ROWS`` rows per side shifted by δσ, tested by
   ``stream_drift`` (a streamed profile of the reference against a streamed current side: both
   sketched) and by ``detect_drift`` in exact mode (every value); how often the verdicts differ,
   and the largest difference of the normalised Wasserstein distance. A verdict may differ only
   where the exact distance is within that difference of the 0.1 threshold.
3. ``conveyor drift --stream`` and ``conveyor validate --stream`` over ``LARGE_ROWS`` rows ×
   20 columns of partitioned Parquet (generated part by part into a temporary folder), each in a
   child process: wall time and peak RSS (target: under 15 s and 1 GB for 10M rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks._env import environment_header, load_line
from conveyor.config import DriftSection
from conveyor.data import (
    DEFAULT_KLL_K,
    build_profile,
    detect_drift,
    kll_rank_error,
    stream_drift,
    stream_profile,
)

SIM_ROWS = 200_000
RUNS = 30
SHIFTS = (0.0, 0.05, 0.08, 0.1, 0.12, 0.2)
LARGE_ROWS = 10_000_000
PARTS = 40
SETTINGS = DriftSection()
CHILD = """
import json, sys, time
from conveyor.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - start
peak = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")][0] * 1024
print(json.dumps({"code": code, "seconds": seconds, "peak": peak}), file=sys.stderr)
"""


def print_rank_error(rows: int = SIM_ROWS) -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=rows)
    profile = stream_profile(pl.DataFrame({"x": values}).lazy())
    sample = profile.columns["x"].sample  # type: ignore[union-attr]
    exact = np.sort(values)
    levels = (np.arange(len(sample)) + 0.5) / len(sample)
    measured = np.max(np.abs(np.searchsorted(exact, sample, side="right") / rows - levels))
    print("\n### The KLL sketch's error\n")
    print("| k | stated rank error (99 %) | largest measured rank error | rows |")
    print("|---:|---:|---:|---:|")
    stated = kll_rank_error(DEFAULT_KLL_K)
    print(f"| {DEFAULT_KLL_K:,} | {stated:.3%} | {measured:.3%} | {rows:,} |")
    print(f"| 200 (Spark's default) | {kll_rank_error(200):.3%} | – | – |")


def print_agreement(rows: int = SIM_ROWS, runs: int = RUNS) -> None:
    print(f"\n### Sketch against exact verdicts: one normal column, {rows:,} rows per side, {runs} runs\n")
    print(
        "| shift δ (σ) | exact: drift share | sketch: drift share | verdicts that differ | max |Δ distance| |"
    )
    print("|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(1)
    for shift in SHIFTS:
        exact_hits = sketch_hits = differ = 0
        worst = 0.0
        for _ in range(runs):
            ref = pl.DataFrame({"x": rng.normal(size=rows)})
            cur = pl.DataFrame({"x": rng.normal(shift, 1.0, rows)})
            exact = detect_drift(build_profile(ref, sample_size=None), cur, SETTINGS, exact_max_rows=rows)
            sketch = stream_drift(stream_profile(ref.lazy()), cur.lazy(), SETTINGS)
            e, s = exact.columns["x"], sketch.columns["x"]
            exact_hits += e.drift
            sketch_hits += s.drift
            differ += e.drift != s.drift
            worst = max(worst, abs(e.statistic - s.statistic))
        print(
            f"| {shift:g} | {exact_hits / runs:.2f} | {sketch_hits / runs:.2f} | {differ} of {runs} | "
            f"{worst:.4f} |"
        )


def _write_large(folder: Path, rows: int, parts: int) -> int:
    """``rows`` × 20 columns (16 numeric, 4 categorical) in ``parts`` Parquet files; in-memory bytes."""
    size = 0
    for p in range(parts):
        rng = np.random.default_rng(p)
        n = rows // parts
        cols: dict[str, np.ndarray] = {f"x{i}": rng.normal(0.0, 1.0 + i / 10, n) for i in range(14)}
        cols["amount"] = rng.exponential(30.0, n)
        cols["quantity"] = rng.integers(1, 6, n).astype(np.float64)
        for i, choices in enumerate(
            (["view", "cart", "buy"], ["fr", "de", "it", "es"], ["a", "b"], ["x", "y", "z"])
        ):
            cols[f"c{i}"] = rng.choice(choices, n)
        part = pl.DataFrame(cols)
        size += part.estimated_size()
        day = folder / f"day={p % 7}"
        day.mkdir(parents=True, exist_ok=True)
        part.write_parquet(day / f"part-{p:03d}.parquet", row_group_size=65_536)
    return size


def _child(*args: str | Path) -> dict[str, float]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, args)], capture_output=True, text=True, env=env, timeout=1800
    )
    result: dict[str, float] = json.loads(done.stderr.strip().splitlines()[-1])
    return result


def print_large(rows: int = LARGE_ROWS, parts: int = PARTS) -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-stream-") as tmp:
        folder = Path(tmp) / "events"
        start = time.perf_counter()
        in_memory = _write_large(folder, rows, parts)
        written = time.perf_counter() - start
        reference = Path(tmp) / "reference.json"
        build_profile(pl.read_parquet(next(folder.glob("*/*.parquet")))).save(reference)
        schema = Path(tmp) / "schema.yaml"
        schema.write_text(
            "columns:\n  amount: {type: float, min: 0}\n  quantity: {type: float, min: 1, max: 5}\n"
            "  c0: {type: string, categories: [view, cart, buy]}\nallow_extra_columns: true\n"
        )
        print(
            f"\n### {rows:,} rows × 20 columns, {parts} Parquet files "
            f"({in_memory / 2**20:,.0f} MB in memory; written in {written:.1f} s)\n"
        )
        print("| command | exit | wall time (s) | peak RSS (MB) |")
        print("|---|---:|---:|---:|")
        for name, args in (
            ("drift --stream", ("drift", reference, folder, "--stream", "--json")),
            ("validate --stream", ("validate", folder, "--schema", schema, "--stream", "--json")),
        ):
            got = _child(*args)
            print(
                f"| `conveyor {name}` | {got['code']} | {got['seconds']:.1f} | {got['peak'] / 2**20:,.0f} |"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=SIM_ROWS)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--large-rows", type=int, default=LARGE_ROWS)
    args = parser.parse_args(argv)
    command = "python -m benchmarks.sketch_drift"
    print(environment_header("streaming checks: sketch against exact", command=command))
    print_rank_error(args.rows)
    print_agreement(args.rows, args.runs)
    if args.large_rows:
        print_large(args.large_rows)
    print()
    print(load_line("after"))


if __name__ == "__main__":
    main()
