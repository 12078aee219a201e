"""Conveyor's ``train`` against calling ``implicit`` directly on the same interactions.

    .venv/bin/python -m benchmarks.training [--users 200000] [--items 50000] [--interactions 5000000]

Synthetic shop events with planted tastes (vectorised, seeded): every user leans to one of
50 categories (90 % of their events there, long-tail popularity inside each category).
Both sides use 128 factors and 15 iterations of ALS with BLAS limited to one thread.

- direct: read the Parquet file, map ids, build the CSR matrix, fit — the least code a user
  would write;
- Conveyor: ``conveyor train --json`` in a fresh process (imports, fingerprint, schema
  inference, time split, fit, popularity baseline, scoring of 10,000 held-out users, MLflow
  opened in the background during the fit, logging of the model files and the profile);
- then ``conveyor train`` again with nothing changed (the reuse answer).

Wall time is the target; CPU time (all threads) is printed beside it because on a shared
machine it moves much less with the other jobs' load than wall time does.

Targets: Conveyor within 1.2 x the direct time, NDCG@10 at least 2 x the popularity
baseline's, the unchanged re-run under 3 s. Prints the environment header, what each side
does, and a Markdown table (``python -m benchmarks --record`` copies it into
docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks._env import environment_header, load_line
from conveyor.telemetry import TELEMETRY_OPT_OUT

CATEGORIES = 50
FACTORS = 128
ITERATIONS = 15


def synthetic_events(n_users: int, n_items: int, n_events: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_events)
    per_category = n_items // CATEGORIES
    zipf = 1.0 / np.arange(1, per_category + 1) ** 0.8
    rank = rng.choice(per_category, n_events, p=zipf / zipf.sum())
    own = rank * CATEGORIES + users % CATEGORIES
    glob = 1.0 / np.arange(1, n_items + 1) ** 0.8
    anywhere = rng.choice(n_items, n_events, p=glob / glob.sum())
    items = np.where(rng.random(n_events) < 0.9, own, anywhere)
    start = np.datetime64("2026-10-01T00:00:00", "us").astype(np.int64)
    stamps = start + rng.integers(0, 28 * 86_400_000_000, n_events)
    events = rng.choice(np.array(["view", "add_to_cart", "purchase"]), n_events, p=[0.8, 0.15, 0.05])
    return pl.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": items.astype(np.int64),
            "timestamp": pl.Series(stamps).cast(pl.Datetime("us")),
            "event": events,
        }
    )


def direct(path: Path) -> dict[str, float]:
    """What a user would write with implicit alone (same weights, same split as Conveyor's train part)."""
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    cpu = time.process_time()
    df = pl.read_parquet(path)
    cutoff = df["timestamp"].max() - np.timedelta64(7, "D")
    train = df.filter(pl.col("timestamp") <= cutoff)
    weights = {"view": 1.0, "add_to_cart": 4.0, "purchase": 10.0}
    coded = train.select(
        (pl.col("user_id").rank("dense") - 1).alias("u"),
        (pl.col("item_id").rank("dense") - 1).alias("i"),
        pl.col("event").replace_strict(weights, return_dtype=pl.Float32).alias("w"),
    )
    matrix = sp.csr_matrix(
        (coded["w"].to_numpy(), (coded["u"].to_numpy(), coded["i"].to_numpy())), dtype=np.float32
    )
    prepared = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(factors=FACTORS, iterations=ITERATIONS, random_state=42)
        model.fit(matrix, show_progress=False)
    end = time.perf_counter()
    return {"total": end - start, "fit": end - prepared, "cpu": time.process_time() - cpu}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def conveyor_train(project: Path) -> tuple[float, float, dict[str, object]]:
    """Wall and CPU seconds of one ``conveyor train --json`` process, and its answer."""
    env = {**os.environ, **TELEMETRY_OPT_OUT}
    exe = Path(sys.executable).with_name("conveyor")
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [str(exe), "--project", str(project), "train", "--json"], capture_output=True, text=True, env=env
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"conveyor train failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return seconds, _children_cpu() - cpu, json.loads(done.stdout)


LIKE_FOR_LIKE = (
    "Like for like: both sides fit the same ALS (implicit, {factors} factors, {iterations} iterations,"
    " random_state 42) on the same file with the same event weights and the same 7-day time split,"
    " BLAS limited to one thread on both sides. The direct side reads the file, maps ids, builds the"
    " matrix and fits — nothing else. Conveyor's side is a fresh `conveyor train --json` process and"
    " does more: imports, data fingerprint, schema inference, the split, the fit, a popularity"
    " baseline, scoring of 10,000 held-out users for NDCG@10, logging the model and its profile to"
    " MLflow. Wall time moves with the machine's load; CPU time (all threads) moves less."
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    args = parser.parse_args(argv)
    say = functools.partial(print, flush=True)  # progress shows while output is piped
    command = (
        f"python -m benchmarks.training --users {args.users} --items {args.items} "
        f"--interactions {args.interactions}"
    )
    say(environment_header("training", command=command))
    say(LIKE_FOR_LIKE.format(factors=FACTORS, iterations=ITERATIONS))
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        project = Path(tmp) / "shop"
        (project / "data" / "raw").mkdir(parents=True)
        (project / "conveyor.yaml").write_text(
            f"project: {{name: bench}}\nmodel: {{embedding_dim: {FACTORS}, epochs: {ITERATIONS}}}\n"
        )
        data = project / "data" / "raw" / "interactions.parquet"
        t = time.perf_counter()
        synthetic_events(args.users, args.items, args.interactions).write_parquet(data)
        say(f"generated {args.interactions:,} events in {time.perf_counter() - t:.1f} s")

        d = direct(data)
        say(f"implicit directly: {d['total']:.1f} s (fit {d['fit']:.1f} s, CPU {d['cpu']:.1f} s)")
        seconds, cpu, result = conveyor_train(project)
        best = result["best"]
        assert isinstance(best, dict)
        ndcg = best["metrics"]["ndcg_at_10"]
        base = best["baseline_metrics"]["ndcg_at_10"]
        say(f"conveyor train: {seconds:.1f} s (CPU {cpu:.1f} s); ratio {seconds / d['total']:.2f}")
        say(f"NDCG@10 {ndcg:.4f} vs popularity {base:.4f} ({ndcg / base:.1f} x)")
        again, _, second = conveyor_train(project)
        say(f"conveyor train, nothing changed: {again:.2f} s (reused: {second['reused']})")
        say(load_line("after"))

    sizes = f"{args.items:,} items × {args.users:,} users × {args.interactions:,} interactions"
    rows = [
        ("implicit directly (read, map, matrix, fit)", f"{d['total']:.1f} s (fit {d['fit']:.1f} s)", "–"),
        ("`conveyor train`", f"{seconds:.1f} s", "–"),
        ("ratio Conveyor / direct", f"{seconds / d['total']:.2f}", "≤ 1.2"),
        ("CPU time direct / Conveyor", f"{d['cpu']:.1f} s / {cpu:.1f} s = {cpu / d['cpu']:.2f}", "–"),
        ("NDCG@10 ALS / popularity", f"{ndcg:.4f} / {base:.4f} = {ndcg / base:.1f} ×", "≥ 2 ×"),
        ("`conveyor train` again, nothing changed", f"{again:.2f} s", "< 3 s"),
    ]
    say(f"\n{sizes}\n")
    say("| measure | value | target |")
    say("|---|---|---|")
    for a, b, c in rows:
        say(f"| {a} | {b} | {c} |")


if __name__ == "__main__":
    main(sys.argv[1:])
