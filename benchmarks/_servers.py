"""What the serving benchmarks share: projects with a registered model, server processes, wrk.

Both servers get the same process environment (``SERVER_THREADS``): one thread for every
native pool (OpenMP, BLAS, joblib/loky, Polars), so neither side gains or loses from a
thread fan-out the other does not have. The forest is trained with ``n_jobs=1``, so the
registered model itself is single-threaded whoever loads it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

from conveyor.telemetry import TELEMETRY_OPT_OUT

N_FEATURES = 8

# Every native thread pool at one thread, for every server process of the benchmarks.
SERVER_THREADS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "LOKY_MAX_CPU_COUNT": "1",
    "POLARS_MAX_THREADS": "1",
}


@dataclass(frozen=True)
class Classifier:
    """A project whose ``production`` alias is a registered random forest."""

    root: Path
    model_name: str
    tracking_uri: str
    row: dict[str, float]  # one request's features


# -- tools ---------------------------------------------------------------------------------
def ensure_wrk() -> str | None:
    """The wrk binary; installed with apt-get when missing and running as root."""
    found = shutil.which("wrk")
    if found is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: installing the Debian package wrk (apt-get install -y wrk)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, timeout=600)
        found = shutil.which("wrk")
    return found


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    path = bindir + os.pathsep + os.environ.get("PATH", "")
    return {**os.environ, **TELEMETRY_OPT_OUT, **SERVER_THREADS, "PATH": path, **(extra or {})}


@contextmanager
def running(
    command: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None, timeout: float = 180
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait for ``ready_url`` to answer 200, stop it afterwards.

    The server runs in its own session (so its whole group can be stopped); a SIGTERM to the
    benchmark (``timeout``, a CI cancel) becomes SystemExit here, so the ``finally`` below still
    stops the server instead of leaving it running.
    """
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=server_env(env), start_new_session=True
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
        yield process
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


@dataclass(frozen=True)
class Load:
    """One wrk run: throughput, latency percentiles and failed requests."""

    connections: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str, connections: int) -> Load:
    def find(pattern: str) -> str:
        match = re.search(pattern, out)
        if match is None:
            raise ValueError(f"wrk output without {pattern!r}:\n{out}")
        return match.group(1)

    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return Load(
        connections,
        float(find(r"Requests/sec:\s+([\d.]+)")),
        _ms(find(r"\s50%\s+(\S+)")),
        _ms(find(r"\s99%\s+(\S+)")),
        errors,
    )


def wrk(binary: str, url: str, script: Path, connections: int, duration: float) -> Load:
    """``wrk --latency`` with 1 thread per connection up to 2 (the machine has 2 cores)."""
    command = [
        binary, f"-t{min(connections, 2)}", f"-c{connections}", f"-d{duration:g}s", "--latency",
        "--timeout", "10s", "-s", str(script), url,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    return parse_wrk(out, connections)


def lua_post(path: Path, body: str) -> Path:
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    return path


# -- projects --------------------------------------------------------------------------------
def write_config(
    root: Path,
    template: str,
    port: int,
    *,
    log: bool = True,
    max_batch_size: int = 64,
    max_wait_ms: float = 2.0,
) -> None:
    """conveyor.yaml; ``max_batch_size: 1, max_wait_ms: 0`` is micro-batching off."""
    model = "random-forest" if template == "classifier" else "als"
    serving = (
        f"{{max_batch_size: {max_batch_size}, max_wait_ms: {max_wait_ms:g}, "
        f"request_log: {{enabled: {str(log).lower()}}}}}"
    )
    (root / "conveyor.yaml").write_text(
        f"project: {{name: bench-{template}, template: {template}}}\n"
        f"model: {{type: {model}}}\n"
        f"serving: {serving}\n"
        f"deploy: {{environments: {{production: {{port: {port}}}}}}}\n"
    )


def register(root: Path, model_dir: Path) -> tuple[str, str]:
    """Register ``model_dir`` as the project's ``production`` version; (model name, tracking URI)."""
    import mlflow

    from conveyor.project import Project
    from conveyor.registry import Lineage, ensure_experiment, register_version

    project = Project.load(root)
    with mlflow.start_run(experiment_id=ensure_experiment(project)) as run:
        pass
    register_version(project, run.info.run_id, model_dir, lineage=Lineage(), alias="production")
    return project.model_name, project.tracking_uri


def classifier_project(root: Path, port: int, trees: int) -> Classifier:
    """A project whose ``production`` alias is a ``trees``-tree forest (``n_jobs=1``) on 8 features."""
    from conveyor.models import RandomForestModel

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, N_FEATURES))
    data = pl.DataFrame({f"f{i}": x[:, i] for i in range(N_FEATURES)}).with_columns(
        label=pl.Series((x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int))
    )
    root.mkdir(parents=True)
    write_config(root, "classifier", port)
    model = RandomForestModel(target="label", params={"n_estimators": trees, "n_jobs": 1}).fit(data)
    model.save(root / "model")
    name, uri = register(root, root / "model")
    return Classifier(root, name, uri, {f"f{i}": float(x[0, i]) for i in range(N_FEATURES)})


def conveyor_command(root: Path) -> list[str]:
    return [sys.executable, "-m", "conveyor", "--project", str(root), "serve", "--env", "production"]


def batch_totals(metrics_url: str) -> tuple[float, float]:
    """(rows, model calls) so far, from the server's ``conveyor_batch_rows`` histogram."""
    text = httpx.get(metrics_url, timeout=10).text
    rows = sum(float(m) for m in re.findall(r"^conveyor_batch_rows_sum\{[^}]*\} (\S+)$", text, re.M))
    calls = sum(float(m) for m in re.findall(r"^conveyor_batch_rows_count\{[^}]*\} (\S+)$", text, re.M))
    return rows, calls


def median_spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def as_json(obj: Any) -> str:
    return json.dumps(obj, default=float)
