"""Serving benchmark: `conveyor serve` against `mlflow models serve`, side by side with wrk.

Same run, same machine, same scikit-learn model (a 100-tree random forest):

1. single-row ``POST /predict`` (MLflow: ``POST /invocations``) at 8 and 64 connections;
2. the same against ``conveyor serve`` with the request log switched off, to price logging;
3. ``POST /recommend`` top-10 over 50,000 items × 128 dimensions at 8 connections.

Run: ``make bench`` (all benchmarks) or ``python -m benchmarks.serving [--duration S]``.
Needs ``wrk`` (Debian package; installed here with apt-get when running as root) and the
``mlflow`` command of this environment. Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

from conveyor.telemetry import TELEMETRY_OPT_OUT

N_FEATURES = 8
N_TREES = 100
N_ITEMS = 50_000
N_USERS = 20_000
FACTORS = 128


@dataclass
class Result:
    server: str
    endpoint: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


# -- tools ---------------------------------------------------------------------------------
def ensure_wrk() -> str | None:
    """The wrk binary; installed with apt-get when missing and running as root."""
    found = shutil.which("wrk")
    if found is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: installing the Debian package wrk (apt-get install -y wrk)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True)
        found = shutil.which("wrk")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, **TELEMETRY_OPT_OUT, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}


@contextmanager
def running(command: list[str], ready_url: str, log: Path, timeout: float = 180) -> Iterator[None]:
    """Start a server process, wait for ``ready_url`` to answer 200, stop it afterwards."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}; see {log}")
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ready_url} not ready after {timeout} s; see {log}")
            time.sleep(0.2)
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# -- wrk -------------------------------------------------------------------------------------
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    binary: str, url: str, script: Path, connections: int, duration: float, server: str, endpoint: str
) -> Result:
    threads = min(connections, 2)
    command = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    out = subprocess.run(
        [*command, "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return Result(server, endpoint, connections, rps, p50, p99, errors)


def lua_post(path: Path, body: str) -> Path:
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    return path


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


# -- projects --------------------------------------------------------------------------------
def _register(root: Path, model_dir: Path) -> None:
    import mlflow

    from conveyor.project import Project
    from conveyor.registry import Lineage, ensure_experiment, register_version

    project = Project.load(root)
    with mlflow.start_run(experiment_id=ensure_experiment(project)) as run:
        pass
    register_version(project, run.info.run_id, model_dir, lineage=Lineage(), alias="production")


def classifier_project(root: Path, port: int) -> tuple[Path, dict[str, float]]:
    """A project whose `production` alias is a 100-tree forest; also saved as an MLflow sklearn model."""
    import mlflow.sklearn

    from conveyor.models import RandomForestModel

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, N_FEATURES))
    data = pl.DataFrame({f"f{i}": x[:, i] for i in range(N_FEATURES)}).with_columns(
        label=pl.Series((x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int))
    )
    root.mkdir(parents=True)
    write_config(root, "classifier", port, log=True)
    model = RandomForestModel(target="label", params={"n_estimators": N_TREES}).fit(data)
    model.save(root / "model")
    _register(root, root / "model")
    # we trained this forest ourselves: its tree type is trusted for MLflow's skops format
    mlflow.sklearn.save_model(
        model.estimator_, str(root / "mlflow-model"), skops_trusted_types=["sklearn.tree._tree.Tree"]
    )
    row = {f"f{i}": float(x[0, i]) for i in range(N_FEATURES)}
    return root / "mlflow-model", row


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
    write_config(root, "recommender", port, log=True)
    model = ImplicitRecommender(params={"factors": FACTORS, "iterations": 2}).fit(data)
    model.save(root / "model")
    _register(root, root / "model")
    return model


def mean_batch_rows(metrics_url: str) -> float:
    """Mean rows per model call, from the server's ``conveyor_batch_rows`` histogram."""
    text = httpx.get(metrics_url, timeout=10).text
    total = sum(float(m) for m in re.findall(r"^conveyor_batch_rows_sum\{[^}]*\} (\S+)$", text, re.M))
    calls = sum(float(m) for m in re.findall(r"^conveyor_batch_rows_count\{[^}]*\} (\S+)$", text, re.M))
    return total / calls if calls else 0.0


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


def write_config(root: Path, template: str, port: int, *, log: bool) -> None:
    model = "random-forest" if template == "classifier" else "als"
    (root / "conveyor.yaml").write_text(
        f"project: {{name: bench-{template}, template: {template}}}\n"
        f"model: {{type: {model}}}\n"
        f"serving: {{request_log: {{enabled: {str(log).lower()}}}}}\n"
        f"deploy: {{environments: {{production: {{port: {port}}}}}}}\n"
    )


def conveyor_command(root: Path) -> list[str]:
    return [sys.executable, "-m", "conveyor", "--project", str(root), "serve", "--env", "production"]


# -- the run ---------------------------------------------------------------------------------
def run(duration: float, work: Path, extra: dict[str, float], log_pairs: int = 3) -> list[Result]:
    binary = ensure_wrk()
    if binary is None:
        print(
            "benchmarks.serving: SKIPPED — wrk is not installed. Install the Debian package "
            "(sudo apt-get install -y wrk) and run `make bench` again.",
            flush=True,
        )
        return []
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    if not mlflow_bin.exists():
        print(f"benchmarks.serving: SKIPPED — {mlflow_bin} not found (pip install mlflow)", flush=True)
        return []
    results: list[Result] = []
    port = free_port()
    print("benchmarks.serving: training and registering the random forest ...", flush=True)
    clf = work / "classifier"
    mlflow_model, row = classifier_project(clf, port)
    warm = max(2.0, duration / 5)

    def measure(url: str, script: Path, server: str, endpoint: str, conns: tuple[int, ...]) -> None:
        wrk(binary, url, script, conns[-1], warm, server, endpoint)  # warm-up, discarded
        for c in conns:
            result = wrk(binary, url, script, c, duration, server, endpoint)
            print(f"  {result}", flush=True)
            results.append(result)

    mlflow_port = free_port()
    mlflow_body = json.dumps({"dataframe_split": {"columns": list(row), "data": [list(row.values())]}})
    command = [
        str(mlflow_bin), "models", "serve", "-m", str(mlflow_model), "--env-manager", "local",
        "-h", "127.0.0.1", "-p", str(mlflow_port),
    ]  # fmt: skip
    print("benchmarks.serving: mlflow models serve ...", flush=True)
    with running(command, f"http://127.0.0.1:{mlflow_port}/ping", work / "mlflow.log"):
        script = lua_post(work / "mlflow.lua", mlflow_body)
        measure(
            f"http://127.0.0.1:{mlflow_port}/invocations",
            script,
            "mlflow models serve",
            "/invocations",
            (8, 64),
        )

    body = json.dumps({"features": row})
    url = f"http://127.0.0.1:{port}"
    # The price of the request log is a difference of two noisy throughputs: measure it in
    # alternating pairs (log on, log off) and compare the medians, not one run of each.
    pairs: dict[bool, list[float]] = {True: [], False: []}
    for attempt in range(log_pairs):
        for log in (True, False):
            write_config(clf, "classifier", port, log=log)
            name = "conveyor serve" if log else "conveyor serve (request log off)"
            print(f"benchmarks.serving: {name} (pair {attempt + 1}/{log_pairs}) ...", flush=True)
            with running(conveyor_command(clf), f"{url}/ready", work / "conveyor.log"):
                script = lua_post(work / "predict.lua", body)
                if attempt == 0:
                    measure(f"{url}/predict", script, name, "/predict", (8, 64))
                    pairs[log].append(results[-1].requests_per_s)
                else:
                    wrk(binary, f"{url}/predict", script, 64, warm, name, "/predict")
                    again = wrk(binary, f"{url}/predict", script, 64, duration, name, "/predict")
                    print(f"  {again}", flush=True)
                    pairs[log].append(again.requests_per_s)
    on, off = statistics.median(pairs[True]), statistics.median(pairs[False])
    extra["request_log_pairs"] = float(log_pairs)
    extra["request_log_on_median_rps"] = round(on, 1)
    extra["request_log_off_median_rps"] = round(off, 1)
    extra["request_log_cost_median"] = round(1 - on / off, 3)
    per_pair = [round(1 - a / b, 3) for a, b in zip(pairs[True], pairs[False], strict=True)]
    print(
        f"  request log: median {on:,.0f} req/s on vs {off:,.0f} off over {log_pairs} pairs "
        f"(cost {1 - on / off:.1%}; per pair: {per_pair})",
        flush=True,
    )

    print("benchmarks.serving: training ALS over 50,000 items x 128 factors ...", flush=True)
    rec = work / "recommender"
    model = recommender_project(rec, port)
    with running(conveyor_command(rec), f"{url}/ready", work / "recommender.log"):
        measure(
            f"{url}/recommend", lua_recommend(work / "recommend.lua"), "conveyor serve", "/recommend", (8,)
        )
        rows = mean_batch_rows(f"{url}/metrics")
    # where a /recommend answer's time goes: the model's own call at the batch size the server formed
    extra["recommend_mean_batch_rows"] = round(rows, 2)
    extra["recommend_model_ms_per_call"] = round(model_ms_per_call(model, max(1, round(rows))), 2)
    print(
        f"  /recommend: {rows:.1f} users per model call; the model alone takes "
        f"{extra['recommend_model_ms_per_call']:.2f} ms per call of that size",
        flush=True,
    )
    return results


def verdicts(results: list[Result]) -> dict[str, object]:
    def get(server: str, endpoint: str, c: int) -> Result:
        return next(
            r for r in results if r.server == server and r.endpoint == endpoint and r.connections == c
        )

    mlflow64 = get("mlflow models serve", "/invocations", 64)
    ours64 = get("conveyor serve", "/predict", 64)
    ours8 = get("conveyor serve", "/predict", 8)
    off64 = get("conveyor serve (request log off)", "/predict", 64)
    rec8 = get("conveyor serve", "/recommend", 8)
    ratio = ours64.requests_per_s / mlflow64.requests_per_s
    cost = 1 - ours64.requests_per_s / off64.requests_per_s
    return {
        "throughput_ratio_vs_mlflow_at_64": round(ratio, 2),
        "predict_ratio_target_met": ratio >= 3,
        "predict_p99_under_100ms": max(ours8.p99_ms, ours64.p99_ms) < 100,
        "recommend_p99_ms_at_8": rec8.p99_ms,
        "recommend_p99_under_10ms": rec8.p99_ms < 10,
        "request_log_cost": round(cost, 3),
        "request_log_cost_under_10pct": cost < 0.10,
    }


def table(results: list[Result]) -> str:
    lines = [
        "| server | endpoint | connections | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.server} | `{r.endpoint}` | {r.connections} | {r.requests_per_s:,.0f} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per wrk run (default 15)")
    parser.add_argument(
        "--log-pairs", type=int, default=3, help="alternating log on/off pairs pricing the request log"
    )
    args = parser.parse_args(argv)
    os.environ.update(TELEMETRY_OPT_OUT)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-serving-") as tmp:
        extra: dict[str, float] = {}
        results = run(args.duration, Path(tmp), extra, max(1, args.log_pairs))
    if not results:
        return
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"\nServing benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}\n")
    print(table(results))
    outcome = verdicts(results)
    if "request_log_cost_median" in extra:  # the paired medians, not the first pair alone
        outcome["request_log_cost"] = extra["request_log_cost_median"]
        outcome["request_log_cost_under_10pct"] = extra["request_log_cost_median"] < 0.10
    print()
    print(json.dumps({"benchmark": "serving", "results": [asdict(r) for r in results], **outcome, **extra}))


if __name__ == "__main__":
    main()
