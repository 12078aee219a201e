"""Serving benchmark: `conveyor serve` against `mlflow models serve`, decomposed, with wrk.

Both sides serve the same registered model version — the project's ``production`` alias, a
100-tree random forest trained with ``n_jobs=1`` — with the same process environment (one
thread for OpenMP, BLAS, joblib/loky and Polars), one row per request:

- ``mlflow models serve -m models:/NAME@production --env-manager local --workers 1`` and
  ``--workers 2`` (``POST /invocations``; MLflow loads the version's pyfunc, which calls the
  same Conveyor model);
- ``conveyor serve`` with micro-batching off (``max_batch_size: 1``, ``max_wait_ms: 0``:
  one model call per request) and on (the defaults, 64 rows / 2 ms) (``POST /predict``).

Each server runs wrk at 1, 8 and 64 connections (after a warm-up); the four servers run in
``--rounds`` rounds, in alternating order, so the machine's noise shows as the spread
between rounds. Two ratios are reported apart: what the server buys (Conveyor batching off
against MLflow) and what micro-batching buys (Conveyor on against off). Then ``POST
/recommend`` top-10 from ALS (128 factors, 50,000 items) at 8 connections.

Run: ``python -m benchmarks.serving [--duration S] [--rounds N]`` (PATH must hold the
environment's bin for ``mlflow``), or ``make bench``. Needs ``wrk`` (Debian package;
installed with apt-get when running as root). Prints the environment header, Markdown
tables and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks._env import environment_header, load_line
from benchmarks._servers import (
    Classifier,
    Load,
    batch_totals,
    classifier_project,
    conveyor_command,
    ensure_wrk,
    lua_post,
    median_spread,
    register,
    running,
    write_config,
    wrk,
)
from conveyor.deploy import free_port
from conveyor.telemetry import TELEMETRY_OPT_OUT

N_TREES = 100
N_ITEMS = 50_000
N_USERS = 20_000
FACTORS = 128
CONNECTIONS = (1, 8, 64)
MLFLOW_1, MLFLOW_2 = "mlflow models serve --workers 1", "mlflow models serve --workers 2"
OFF, ON = "conveyor serve, micro-batching off", "conveyor serve, micro-batching on"
SERVERS = (MLFLOW_1, MLFLOW_2, OFF, ON)


@dataclass(frozen=True)
class Run:
    server: str
    round: int
    load: Load
    rows_per_call: float | None  # conveyor only: mean rows per model call during this run


# -- the servers -----------------------------------------------------------------------------
def measure_server(
    server: str, clf: Classifier, binary: str, work: Path, duration: float, round_no: int
) -> list[Run]:
    """Start ``server`` on the classifier project, warm it up, run wrk at each connection count."""
    port = free_port()
    warm = max(2.0, duration / 3)
    if server.startswith("mlflow"):
        workers = "2" if server == MLFLOW_2 else "1"
        command = [
            str(Path(sys.executable).with_name("mlflow")), "models", "serve",
            "-m", f"models:/{clf.model_name}@production", "--env-manager", "local",
            "--workers", workers, "-h", "127.0.0.1", "-p", str(port),
        ]  # fmt: skip
        env = {"MLFLOW_TRACKING_URI": clf.tracking_uri, "MLFLOW_REGISTRY_URI": clf.tracking_uri}
        body = json.dumps({"dataframe_split": {"columns": list(clf.row), "data": [list(clf.row.values())]}})
        ready, url = f"http://127.0.0.1:{port}/ping", f"http://127.0.0.1:{port}/invocations"
    else:
        batching = {} if server == ON else {"max_batch_size": 1, "max_wait_ms": 0.0}
        write_config(clf.root, "classifier", port, **batching)  # type: ignore[arg-type]
        command, env = conveyor_command(clf.root), {}
        body = json.dumps({"features": clf.row})
        ready, url = f"http://127.0.0.1:{port}/ready", f"http://127.0.0.1:{port}/predict"
    script = lua_post(work / "body.lua", body)
    print(f"benchmarks.serving: round {round_no}: {server} ...", flush=True)
    runs = []
    with running(command, ready, work / "servers.log", env=env):
        wrk(binary, url, script, 8, warm)  # warm-up, discarded
        for connections in CONNECTIONS:
            before = None if server.startswith("mlflow") else batch_totals(f"http://127.0.0.1:{port}/metrics")
            load = wrk(binary, url, script, connections, duration)
            per_call = None
            if before is not None:
                rows, calls = batch_totals(f"http://127.0.0.1:{port}/metrics")
                per_call = (rows - before[0]) / max(1.0, calls - before[1])
            runs.append(Run(server, round_no, load, per_call))
            extra = f", {per_call:.1f} rows per model call" if per_call is not None else ""
            print(
                f"  c={connections:>2}: {load.requests_per_s:8,.0f} req/s  p50 {load.p50_ms:7.1f} ms  "
                f"p99 {load.p99_ms:7.1f} ms  errors {load.errors}{extra}",
                flush=True,
            )
    return runs


def recommender_project(root: Path, port: int) -> Any:
    """A project whose `production` alias is ALS with 128 factors over 50,000 items; returns the model."""
    from conveyor.models import ImplicitRecommender

    rng = np.random.default_rng(1)
    n = 400_000
    items = np.concatenate([np.arange(N_ITEMS), (rng.zipf(1.3, n - N_ITEMS) - 1) % N_ITEMS])
    users = np.concatenate([rng.integers(0, N_USERS, N_ITEMS), np.arange(n - N_ITEMS) % N_USERS])
    data = pl.DataFrame(
        {"user_id": users, "item_id": items, "timestamp": np.arange(n) + 1_700_000_000, "event": ["view"] * n}
    )
    root.mkdir(parents=True)
    write_config(root, "recommender", port)
    model = ImplicitRecommender(params={"factors": FACTORS, "iterations": 2}).fit(data)
    model.save(root / "model")
    register(root, root / "model")
    return model


def lua_recommend(path: Path) -> Path:
    path.write_text(
        "math.randomseed(7)\n"
        "request = function()\n"
        f'  local body = string.format(\'{{"user_id": %d, "k": 10, "exclude_seen": true}}\', '
        f"math.random(0, {N_USERS - 1}))\n"
        '  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)\n'
        "end\n"
    )
    return path


def model_ms_per_call(model: Any, batch: int, calls: int = 200) -> float:
    """Median milliseconds of the model's own ``recommend`` for ``batch`` random known users (top-10,
    exclude_seen), on one BLAS thread as in the server: the part of a request no server can remove."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(3)
    times = []
    with threadpool_limits(limits=1):
        for _ in range(calls):
            users = [int(u) for u in rng.integers(0, N_USERS, batch)]
            start = time.perf_counter()
            model.recommend(users, 10, exclude_seen=True)
            times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def measure_recommend(binary: str, work: Path, duration: float) -> dict[str, float]:
    print("benchmarks.serving: training ALS over 50,000 items x 128 factors ...", flush=True)
    port = free_port()
    rec = work / "recommender"
    model = recommender_project(rec, port)
    url = f"http://127.0.0.1:{port}"
    with running(conveyor_command(rec), f"{url}/ready", work / "servers.log"):
        script = lua_recommend(work / "recommend.lua")
        wrk(binary, f"{url}/recommend", script, 8, max(2.0, duration / 3))
        load = wrk(binary, f"{url}/recommend", script, 8, duration)
        rows, calls = batch_totals(f"{url}/metrics")
    per_call = rows / calls if calls else 0.0
    out = {
        "recommend_rps_at_8": round(load.requests_per_s, 1),
        "recommend_p50_ms_at_8": load.p50_ms,
        "recommend_p99_ms_at_8": load.p99_ms,
        "recommend_errors": float(load.errors),
        "recommend_mean_batch_rows": round(per_call, 2),
        "recommend_model_ms_per_call": round(model_ms_per_call(model, max(1, round(per_call))), 2),
    }
    return out


# -- the tables ------------------------------------------------------------------------------
def summarise(runs: list[Run]) -> dict[tuple[str, int], dict[str, float]]:
    """Per (server, connections): median and range of throughput over rounds, median p50/p99."""
    out = {}
    for server in SERVERS:
        for c in CONNECTIONS:
            mine = [r for r in runs if r.server == server and r.load.connections == c]
            rps, lo, hi = median_spread([r.load.requests_per_s for r in mine])
            per_call = [r.rows_per_call for r in mine if r.rows_per_call is not None]
            out[(server, c)] = {
                "rps": rps,
                "rps_min": lo,
                "rps_max": hi,
                "p50": median_spread([r.load.p50_ms for r in mine])[0],
                "p99": median_spread([r.load.p99_ms for r in mine])[0],
                "p99_max": max(r.load.p99_ms for r in mine),
                "errors": float(sum(r.load.errors for r in mine)),
                "rows_per_call": median_spread(per_call)[0] if per_call else float("nan"),
            }
    return out


def results_table(summary: dict[tuple[str, int], dict[str, float]], rounds: int) -> str:
    lines = [
        f"| server | connections | requests/s (median of {rounds}) | range over rounds | "
        "p50 ms | p99 ms (median / worst) | rows per model call | errors |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for (server, c), s in summary.items():
        per_call = "–" if s["rows_per_call"] != s["rows_per_call"] else f"{s['rows_per_call']:.1f}"
        lines.append(
            f"| {server} | {c} | {s['rps']:,.0f} | {s['rps_min']:,.0f}–{s['rps_max']:,.0f} | "
            f"{s['p50']:.1f} | {s['p99']:.1f} / {s['p99_max']:.1f} | {per_call} | {s['errors']:.0f} |"
        )
    return "\n".join(lines)


def decomposition(summary: dict[tuple[str, int], dict[str, float]]) -> tuple[str, dict[str, float]]:
    """Throughput ratios: the server (batching off / MLflow) and batching (on / off), per connections."""
    lines = [
        "| connections | server: off / mlflow w1 | server: off / mlflow w2 | batching: on / off | "
        "total: on / mlflow w2 |",
        "|---:|---:|---:|---:|---:|",
    ]
    ratios: dict[str, float] = {}
    for c in CONNECTIONS:

        def rps(server: str, c: int = c) -> float:
            return summary[(server, c)]["rps"]

        row = {
            f"server_vs_mlflow_w1_at_{c}": rps(OFF) / rps(MLFLOW_1),
            f"server_vs_mlflow_w2_at_{c}": rps(OFF) / rps(MLFLOW_2),
            f"batching_on_vs_off_at_{c}": rps(ON) / rps(OFF),
            f"total_vs_mlflow_w2_at_{c}": rps(ON) / rps(MLFLOW_2),
        }
        ratios.update({k: round(v, 2) for k, v in row.items()})
        lines.append(f"| {c} | " + " | ".join(f"{v:.2f} ×" for v in row.values()) + " |")
    return "\n".join(lines), ratios


def targets(summary: dict[tuple[str, int], dict[str, float]], recommend: dict[str, float]) -> str:
    """The project's serving targets, each with its measured value and verdict."""
    ratio = summary[(ON, 64)]["rps"] / summary[(MLFLOW_2, 64)]["rps"]
    p99 = max(summary[(ON, 8)]["p99"], summary[(ON, 64)]["p99"])
    rec = recommend["recommend_p99_ms_at_8"]
    rows = [
        (
            "`/predict` throughput at 64 connections ≥ 3 × `mlflow models serve --workers 2`",
            f"{ratio:.2f} ×",
            ratio >= 3,
        ),
        (
            "`/predict` p99 < 100 ms at 8 and 64 connections (micro-batching on, median of rounds)",
            f"{p99:.1f} ms",
            p99 < 100,
        ),
        ("`/recommend` top-10 p99 < 10 ms at 8 connections", f"{rec:.1f} ms", rec < 10),
    ]
    lines = ["| target | measured | verdict |", "|---|---:|---|"]
    lines += [f"| {name} | {value} | {'met' if ok else 'NOT met'} |" for name, value, ok in rows]
    return "\n".join(lines)


# -- the run ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the four servers (default 2)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rounds < 1:
        parser.error("--duration must be > 0 and --rounds at least 1")
    os.environ.update(TELEMETRY_OPT_OUT)
    command = f"python -m benchmarks.serving --duration {args.duration:g} --rounds {args.rounds}"
    print(environment_header("serving", command=command), flush=True)
    binary = ensure_wrk()
    if binary is None:
        print("benchmarks.serving: SKIPPED — wrk is not installed (apt-get install -y wrk)", flush=True)
        return
    if not Path(sys.executable).with_name("mlflow").exists():
        print(f"benchmarks.serving: SKIPPED — no mlflow command beside {sys.executable}", flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-serving-") as tmp:
        work = Path(tmp)
        print(f"benchmarks.serving: training and registering a {N_TREES}-tree forest ...", flush=True)
        clf = classifier_project(work / "classifier", free_port(), N_TREES)
        runs: list[Run] = []
        for round_no in range(1, args.rounds + 1):
            order = SERVERS if round_no % 2 else tuple(reversed(SERVERS))
            for server in order:
                runs += measure_server(server, clf, binary, work, args.duration, round_no)
        recommend = measure_recommend(binary, work, args.duration)
    summary = summarise(runs)
    table, ratios = decomposition(summary)
    print(f"\n{load_line('after')}\n")
    print(results_table(summary, args.rounds))
    print()
    print(table)
    print()
    print(targets(summary, recommend))
    print()
    print(
        f"/recommend top-10 (ALS, {FACTORS} factors, {N_ITEMS:,} items), 8 connections: "
        f"{recommend['recommend_rps_at_8']:,.0f} req/s, p50 {recommend['recommend_p50_ms_at_8']:.1f} ms, "
        f"p99 {recommend['recommend_p99_ms_at_8']:.1f} ms, {recommend['recommend_errors']:.0f} errors; "
        f"{recommend['recommend_mean_batch_rows']:.1f} users per model call, the model alone "
        f"{recommend['recommend_model_ms_per_call']:.2f} ms per call of that size"
    )
    print()
    record = {"benchmark": "serving", "runs": [asdict(r) for r in runs], **ratios, **recommend}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
