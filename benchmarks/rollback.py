"""Rollback time and the time to notice a dead production server, on 1 replica.

Builds a recommender project with two registered ALS versions, deploys 1 then
2 (blue-green) to production on free loopback ports, then:

* **rollback**: runs ``conveyor rollback --json`` in a fresh process (imports
  included, as an operator runs it) N times, flipping between the versions,
  while a thread polls ``GET /version`` every 20 ms: *to traffic back* is from
  the command's start to the first poll that sees the other version serve,
  *to return* is from the start to the command's exit; beside them, the
  interpreter's bare start and the command's imports, each in a fresh process
  (the part of the time that is Python starting, not the rollback);
* **monitor**: with the watchdog stopped, ``kill -9`` of the server, then one
  ``conveyor monitor --json`` in a fresh process: the time from the kill to
  its exit 1 naming the readiness check;
* **watchdog**: with the watchdog running, ``kill -9`` of the server: the time
  from the kill to ``/ready`` answering 200 again with the expected version.

Prints the environment header (date, machine, load), the tables that
docs/benchmarks.md records, and one JSON line with every measurement. One
replica per environment exists today; three replicas come with issue 15
("Production for real, part 2").

    .venv/bin/python -m benchmarks.rollback [--rollbacks 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

from benchmarks._env import environment_header, load_line
from conveyor.deploy import free_port
from conveyor.telemetry import TELEMETRY_OPT_OUT

POLL_SECONDS = 0.02  # the watcher's resolution; faster polling takes CPU from the command it times
SYNC_WAIT_SECONDS = 120.0  # the longest wait for an earlier rollback's alias update to finish
WAIT_SECONDS = 180.0


def build_project(root: Path) -> None:
    """Two ALS versions of a 300-user shop, registered; production and staging on free ports."""
    import mlflow

    from conveyor.models import ImplicitRecommender
    from conveyor.project import Project
    from conveyor.registry import Lineage, ensure_experiment, register_version

    rng = np.random.default_rng(0)
    rows = [
        (user, int(item), 1_700_000_000 + i, "view")
        for i, (user, item) in enumerate(
            (u, it) for u in range(300) for it in rng.integers((u % 3) * 20, (u % 3) * 20 + 20, 15)
        )
    ]
    data = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp", "event"], orient="row")
    (root / "data" / "raw").mkdir(parents=True)
    data.write_parquet(root / "data" / "raw" / "interactions.parquet")
    (root / "conveyor.yaml").write_text(
        "project: {name: bench}\nmodel: {k: 5}\n"
        "deploy:\n  health_timeout_seconds: 120\n  environments:\n"
        f"    staging: {{port: {free_port()}}}\n    production: {{port: {free_port()}}}\n"
        "  smoke: {latency_budget_ms: 5000}\n"
    )
    project = Project.load(root)
    experiment = ensure_experiment(project)
    for seed in (1, 2):
        model = ImplicitRecommender(params={"factors": 8, "iterations": 5}, seed=seed).fit(data)
        model.save(root / "models" / str(seed))
        with mlflow.start_run(experiment_id=experiment) as run:
            pass
        register_version(project, run.info.run_id, root / "models" / str(seed), lineage=Lineage())


def _env() -> dict[str, str]:
    return {**os.environ, **TELEMETRY_OPT_OUT, "GITHUB_ACTOR": "benchmark"}


def conveyor(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "conveyor", "--project", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=600, check=False)


class VersionWatcher:
    """Polls ``/version`` in a thread; records when ``primary`` first differs from a given version."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.changed_at: float | None = None
        self._from: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, current: str) -> None:
        self._from, self.changed_at = current, None
        if not self._thread.is_alive():
            self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self._stop.is_set():
                try:
                    primary = client.get(self.url + "/version").json().get("primary")
                except httpx.HTTPError:
                    primary = None
                if self.changed_at is None and primary is not None and primary != self._from:
                    self.changed_at = time.perf_counter()
                time.sleep(POLL_SECONDS)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _primary(url: str) -> str:
    return str(httpx.get(url + "/version", timeout=5).json()["primary"])


def alias_syncs(root: Path) -> int:
    """The detached ``conveyor sync-aliases`` processes of this project still running."""
    import psutil

    count = 0
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        count += "sync-aliases" in cmdline and str(root) in cmdline
    return count


def wait_for_alias_syncs(root: Path) -> int:
    """Wait (bounded) until the detached alias updates of earlier rollbacks have exited: each
    rollback is timed as an operator meets it, not racing the bookkeeping of the one before.
    Returns how many were still running when it gave up (0 normally)."""
    deadline = time.monotonic() + SYNC_WAIT_SECONDS
    while (running := alias_syncs(root)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return running


def measure_rollbacks(root: Path, url: str, n: int) -> list[dict[str, float]]:
    watcher = VersionWatcher(url)
    runs = []
    try:
        for _ in range(n):
            syncs = wait_for_alias_syncs(root)
            before = _primary(url)
            watcher.watch(before)
            time.sleep(0.2)
            start = time.perf_counter()
            done = conveyor(root, "rollback", "--env", "production", "--json")
            returned = time.perf_counter()
            if done.returncode != 0:
                raise SystemExit(f"rollback failed: {done.stderr.strip()}")
            deadline = time.monotonic() + 5
            while watcher.changed_at is None and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
            if watcher.changed_at is None:
                raise SystemExit("the traffic did not switch")
            runs.append({
                "to_traffic_back_s": round(watcher.changed_at - start, 3),
                "to_return_s": round(returned - start, 3),
                "switch_ms": round(json.loads(done.stdout)["switch_ms"], 1),
                "alias_syncs_running": syncs,
            })  # fmt: skip
    finally:
        watcher.close()
    return runs


def _server_pid(root: Path) -> int:
    record = json.loads((root / ".conveyor" / "envs" / "production" / "server.pid").read_text())
    return int(record["pid"])


def measure_watchdog(root: Path, url: str) -> dict[str, Any]:
    expected = _primary(url)
    pid = _server_pid(root)
    killed = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(url + "/ready", timeout=1).status_code == 200
            if ready and _primary(url) == expected and _server_pid(root) != pid:
                return {"kill_to_ready_again_s": round(time.perf_counter() - killed, 2), "version": expected}
        except (httpx.HTTPError, OSError, ValueError):
            pass
        time.sleep(0.05)
    raise SystemExit("the watchdog did not restart the server")


def measure_monitor(root: Path) -> dict[str, Any]:
    from conveyor.deploy import EnvironmentProcess
    from conveyor.project import Project

    process = EnvironmentProcess(Project.load(root), "production")
    process.stop_watchdog()
    record = process.record()
    if record is None:
        raise SystemExit("no production server to kill")
    killed = time.perf_counter()
    os.kill(record.pid, signal.SIGKILL)
    done = conveyor(root, "monitor", "--json")
    seconds = time.perf_counter() - killed
    report = json.loads(done.stdout)
    readiness = next(c for c in report["checks"] if c["name"] == "readiness")
    return {
        "kill_to_exit_s": round(seconds, 2),
        "exit_code": done.returncode,
        "readiness": readiness["status"],
        "summary": readiness["summary"],
    }


def measure_startup(runs: int = 5) -> dict[str, float]:
    """Median seconds of a bare interpreter and of the rollback command's imports, in fresh processes."""

    def median_of(code: str) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=_env(), check=True)
            times.append(time.perf_counter() - start)
        return round(statistics.median(times), 3)

    return {
        "python_bare_s": median_of("pass"),
        "rollback_imports_s": median_of("import conveyor.cli._app, conveyor.deploy._rollback"),
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def run(n_rollbacks: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="conveyor-rollback-bench-"))
    root = work / "shop"
    root.mkdir()
    try:
        build_project(root)
        for version, how in (("1", "direct"), ("2", "blue-green")):
            done = conveyor(root, "deploy", "--env", "production", "--strategy", how, "--version", version)
            if done.returncode != 0:
                raise SystemExit(f"deploy of {version} failed: {done.stderr.strip()}")
        from conveyor.project import Project

        settings = Project.load(root).settings.deploy.environments["production"]
        url = f"http://{settings.host}:{settings.port}"
        rollbacks = measure_rollbacks(root, url, n_rollbacks)
        startup = measure_startup()
        watchdog = measure_watchdog(root, url)
        monitor = measure_monitor(root)
    finally:
        conveyor_stop(root)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "load_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "replicas": 1,
        "rollback": {
            "runs": len(rollbacks),
            "to_traffic_back_s": _summary([r["to_traffic_back_s"] for r in rollbacks]),
            "to_return_s": _summary([r["to_return_s"] for r in rollbacks]),
            "server_switch_ms": _summary([r["switch_ms"] for r in rollbacks]),
            "startup": startup,
            "each": rollbacks,
        },
        "watchdog_restart": watchdog,
        "monitor_detects_dead_server": monitor,
    }


def conveyor_stop(root: Path) -> None:
    from conveyor.deploy import EnvironmentProcess
    from conveyor.project import Project

    if (root / "conveyor.yaml").exists():
        project = Project.load(root)
        for env in project.settings.deploy.environments:
            EnvironmentProcess(project, env).stop(grace=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rollbacks", type=int, default=10)
    args = parser.parse_args(argv)
    print(
        environment_header("rollback", command=f"python -m benchmarks.rollback --rollbacks {args.rollbacks}")
    )
    result = run(args.rollbacks)
    print(load_line("after"))
    print()
    print(table(result))
    print(json.dumps(result))  # one line: the recorder leaves it out of docs/benchmarks.md
    return 0


def table(result: dict[str, Any]) -> str:
    """The section's table in docs/benchmarks.md, from one run's result."""
    rollback = result["rollback"]
    startup = rollback["startup"]
    monitor = result["monitor_detects_dead_server"]

    def seconds(summary: dict[str, float]) -> tuple[str, str]:
        return f"{summary['median']:.2f} s", f"{summary['max']:.2f} s"

    rows = [
        ("rollback: command start → traffic back", *seconds(rollback["to_traffic_back_s"])),
        ("rollback: command start → command returns", *seconds(rollback["to_return_s"])),
        (
            "rollback: the server's switch (admin call)",
            f"{rollback['server_switch_ms']['median']:.1f} ms",
            f"{rollback['server_switch_ms']['max']:.1f} ms",
        ),
        ("of which: bare `python -c pass`", f"{startup['python_bare_s']:.2f} s", ""),
        ("of which: the command's imports", f"{startup['rollback_imports_s']:.2f} s", ""),
        (
            "watchdog: `kill -9` of the server → `/ready` 200 with the ledger's version",
            f"{result['watchdog_restart']['kill_to_ready_again_s']:.2f} s",
            "",
        ),
        (
            f"monitor: `kill -9` (watchdog stopped) → `conveyor monitor` exits {monitor['exit_code']}, "
            f"readiness `{monitor['readiness']}`",
            f"{monitor['kill_to_exit_s']:.2f} s",
            "",
        ),
    ]
    lines = [
        f"{rollback['runs']} rollbacks, {result['replicas']} replica",
        "",
        "| measure | median | max |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {median} | {worst} |" for name, median, worst in rows]
    lines += ["", "Each rollback (alias syncs: detached `conveyor sync-aliases` processes of earlier", ""]
    lines[-2] += " rollbacks still running when it started; it waits up to 120 s for them first):"
    lines += [
        "| run | to traffic back | to return | switch | alias syncs running |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {i} | {r['to_traffic_back_s']:.2f} s | {r['to_return_s']:.2f} s | {r['switch_ms']:.1f} ms "
        f"| {r['alias_syncs_running']} |"
        for i, r in enumerate(rollback["each"], start=1)
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
