"""`conveyor monitor` over one million logged requests (target: under 10 s).

Writes a recommender project with a training table, its reference profile and
a request log of N recommendation requests (plus ~0.3 N feedback events) in
the documented Parquet format, then times one `conveyor monitor --json` run
in a fresh process (imports included), as a scheduled job would run it.

    .venv/bin/python -m benchmarks.monitoring [--requests 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks._env import environment_header, load_line
from conveyor.data import build_profile
from conveyor.telemetry import TELEMETRY_OPT_OUT

TARGET_SECONDS = 10.0
N_ITEMS = 5_000
N_USERS = 200_000
CATEGORIES = [f"cat_{i:02d}" for i in range(20)]


def build_project(root: Path, n_requests: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    (root / "data" / "raw").mkdir(parents=True)
    (root / "conveyor.yaml").write_text(
        "project:\n  name: bench\nmonitoring:\n  retrain:\n    action: none\n"
    )
    item_cat = rng.integers(0, len(CATEGORIES), N_ITEMS)
    item_price = np.round(rng.lognormal(3.0, 0.6, N_ITEMS), 2)
    pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.9
    pop /= pop.sum()
    n_train = 500_000
    items = rng.choice(N_ITEMS, n_train, p=pop)
    training = pl.DataFrame({
        "user_id": rng.integers(0, N_USERS, n_train), "item_id": items,
        "event": rng.choice(["view", "add_to_cart", "purchase"], n_train, p=[0.8, 0.15, 0.05]),
        "price": item_price[items], "category": np.array(CATEGORIES)[item_cat[items]],
    })  # fmt: skip
    training.write_parquet(root / "data" / "raw" / "interactions.parquet")
    state = root / ".conveyor"
    build_profile(training, ["price", "category"]).save(state / "reference-profile.json")
    log = state / "requests" / "production"
    log.mkdir(parents=True)
    now = datetime.now(UTC)
    start = now - timedelta(hours=6)
    start_us = int(start.timestamp() * 1_000_000)
    offsets = np.sort(rng.integers(0, 6 * 3600 * 1_000_000 - 1_000_000, n_requests))
    ts = pl.Series("ts", start_us + offsets).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    recs = rng.choice(N_ITEMS, (1000, 10), p=pop)  # 1000 distinct answers, reused
    outputs = [
        json.dumps({"items": [str(i) for i in r], "scores": [1.0] * 10, "fallback": False}) for r in recs
    ]
    variant = rng.random(n_requests) < 0.1
    predictions = pl.DataFrame({
        "ts": ts, "request_id": [f"{i:032x}" for i in range(n_requests)], "env": "production",
        "model_version": np.where(variant, "4", "3"), "variant": np.where(variant, "candidate", "primary"),
        "endpoint": "/recommend", "user_id": rng.integers(0, N_USERS, n_requests).astype(str),
        "features": '{"k": 10, "exclude_seen": true}',
        "output": np.array(outputs)[rng.integers(0, 1000, n_requests)],
        "latency_ms": rng.gamma(4.0, 2.5, n_requests),
        "status": np.where(rng.random(n_requests) < 0.001, 500, 200).astype(np.int32),
    })  # fmt: skip
    n_fb = int(0.3 * n_requests)
    fb_items = rng.choice(N_ITEMS, n_fb, p=pop)
    feedback = pl.DataFrame({
        "ts": predictions["ts"].gather(rng.integers(0, n_requests, n_fb)).sort(),
        "request_id": None, "user_id": rng.integers(0, N_USERS, n_fb).astype(str),
        "item_id": fb_items.astype(str), "event": rng.choice(["click", "add_to_cart", "purchase"], n_fb),
        "model_version": "3", "variant": "primary",
    }, schema_overrides={"request_id": pl.String})  # fmt: skip
    for i, chunk in enumerate(predictions.iter_slices(100_000)):
        chunk.write_parquet(log / f"predictions-20260101T000000Z-{i:06d}.parquet")
    for i, chunk in enumerate(feedback.iter_slices(100_000)):
        chunk.write_parquet(log / f"feedback-20260101T000000Z-{i:06d}.parquet")


def run(n_requests: int, runs: int) -> dict[str, object]:
    """Build the project once, then time ``runs`` fresh ``conveyor monitor --json`` processes."""
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-monitor-") as tmp:
        root = Path(tmp) / "bench"
        root.mkdir()
        build_project(root, n_requests)
        env = {**os.environ, **TELEMETRY_OPT_OUT}
        # --since covers the log's 6 hours: every run reads the same window (without it a
        # monitor run starts where the previous one ended and the later runs read nothing)
        argv = [
            sys.executable, "-m", "conveyor", "--project", str(root), "monitor", "--json", "--since", "12h",
        ]  # fmt: skip
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True, env=env)
            times.append(time.perf_counter() - started)
            report = json.loads(proc.stdout)
            if report["counts"]["requests"] != n_requests:
                raise SystemExit(f"monitor read {report['counts']['requests']:,} of {n_requests:,} requests")
        seconds = statistics.median(times)
        return {
            "requests": report["counts"]["requests"],
            "feedback": report["counts"]["feedback"],
            "seconds": round(seconds, 2),
            "seconds_each_run": [round(t, 2) for t in times],
            "target_seconds": TARGET_SECONDS,
            "met": seconds < TARGET_SECONDS and report["counts"]["requests"] == n_requests,
            "exit_code": proc.returncode,
            "checks": {c["name"]: c["status"] for c in report["checks"]},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="timed monitor processes (default 3)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.runs < 1:
        parser.error("--requests and --runs must be at least 1")
    command = f"python -m benchmarks.monitoring --requests {args.requests} --runs {args.runs}"
    print(environment_header("monitoring", command=command), flush=True)
    result = run(args.requests, args.runs)
    each = ", ".join(f"{t:.2f}" for t in result["seconds_each_run"])  # type: ignore[attr-defined]
    print(f"{load_line('after')}\n")
    print(f"| requests | feedback | wall time (median of {args.runs}) | each run (s) | target | met |")
    print("|---:|---:|---:|---|---|---|")
    print(
        f"| {result['requests']:,} | {result['feedback']:,} | {result['seconds']:.2f} s | {each} | "
        f"< {TARGET_SECONDS:g} s | {'yes' if result['met'] else 'no'} |"
    )
    print()
    print(json.dumps(result))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
