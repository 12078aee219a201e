"""Replicas: switch time across 3, rollback time on 1 and 3, throughput of 1 vs 3 through HAProxy.

Builds the recommender project of :mod:`benchmarks.rollback` (two registered ALS
versions), starts three ``conveyor serve --env production`` replicas on free
loopback ports, each from its own folder (as on its own host), and drives them
from a folder holding only the project's ``conveyor.yaml`` (``replicas:`` by URL):

* **switch**: the admin fan-out of a blue-green switch (``FleetClient.switch``:
  read every replica, switch them in parallel) on 1 and on 3 replicas, flipping
  between the versions N times, in this process;
* **rollback**: ``conveyor rollback --json`` in a fresh process (imports
  included), N times on 1 replica (a configuration listing one URL) and N times
  on 3, while one thread per replica polls ``GET /version`` every 20 ms: *to
  traffic back on every replica* is from the command's start until the last
  replica serves the other version, *to return* until the command exits;
* **throughput**: ``wrk`` (2 threads, 16 connections, a fixed duration) posting
  ``/recommend`` for 300 users round robin through HAProxy over 1 replica, then
  over 3, in one run; the ratio of the two. On a 2-core machine three replicas
  cannot scale CPU-bound work — the load generator, HAProxy and the replicas
  share the same two cores — so the ratio says what the extra replicas cost or
  give here, not what they give on three hosts.

Prints the environment header, the tables docs/benchmarks.md records ("Replicas")
and one JSON line with every measurement.

    .venv/bin/python -m benchmarks.fleet [--runs 10] [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks._env import environment_header, load_line
from benchmarks.rollback import build_project, wait_for_alias_syncs
from conveyor.deploy import free_port
from conveyor.telemetry import TELEMETRY_OPT_OUT

TOKEN_VAR = "BENCH_ADMIN_TOKEN"
WAIT_SECONDS = 240.0
POLL_SECONDS = 0.02  # the watchers' resolution; faster polling takes CPU from the command it times
WRK_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"user_id": ' .. (counter % 300) .. ', "k": 5}'
  return wrk.format("POST", "/recommend", {["Content-Type"] = "application/json"}, body)
end
"""


def _env() -> dict[str, str]:
    return {**os.environ, **TELEMETRY_OPT_OUT, TOKEN_VAR: "bench-token", "GITHUB_ACTOR": "benchmark"}


def _config(shared: Path, urls: list[str], own_log: Path | None = None) -> str:
    raw: dict[str, Any] = {
        "project": {"name": "bench", "state_dir": str(shared / ".conveyor")},
        "data": {"source": str(shared / "data" / "raw" / "interactions.parquet")},
        "model": {"k": 5},
        "deploy": {
            "health_timeout_seconds": 240,
            "environments": {"production": {"replicas": urls, "admin_token_env": TOKEN_VAR}},
            "smoke": {"latency_budget_ms": 5000},
        },
    }
    if own_log is not None:
        raw["serving"] = {"request_log": {"dir": str(own_log)}}
    return yaml.safe_dump(raw, sort_keys=False)


def _wait_health(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"replica {url} exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"replica {url} did not start within {WAIT_SECONDS:g} s")


def conveyor(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "conveyor", "--project", str(folder), *args]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=900, check=False)


class Watcher:
    """One thread per replica polling ``/version``; when each first serves another version."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.changed: dict[str, float] = {}
        self._from = ""
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(u,), daemon=True) for u in urls]
        for thread in self._threads:
            thread.start()

    def watch(self, current: str) -> None:
        self._from, self.changed = current, {}

    def _run(self, url: str) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self._stop.is_set():
                try:
                    primary = client.get(url + "/version").json().get("primary")
                except httpx.HTTPError:
                    primary = None
                if primary is not None and self._from and primary != self._from and url not in self.changed:
                    self.changed[url] = time.perf_counter()
                time.sleep(POLL_SECONDS)

    def close(self) -> None:
        self._stop.set()


def _primary(url: str) -> str:
    return str(httpx.get(url + "/version", timeout=5).json()["primary"])


def measure_switch(urls: list[str], runs: int) -> list[float]:
    """Milliseconds of ``FleetClient.switch`` over ``urls``, flipping between versions 1 and 2."""
    from conveyor.deploy import FleetClient, ServerClient

    fleet = FleetClient(
        [ServerClient(u, "bench-token", environment="production") for u in urls], environment="production"
    )
    times = []
    for _ in range(runs):
        target = "1" if _primary(urls[0]) == "2" else "2"
        started = time.perf_counter()
        fleet.switch(target)
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure_rollbacks(ops: Path, urls: list[str], runs: int) -> list[dict[str, float]]:
    watcher = Watcher(urls)
    found = []
    try:
        for _ in range(runs):
            wait_for_alias_syncs(ops)
            watcher.watch(_primary(urls[0]))
            time.sleep(0.2)
            started = time.perf_counter()
            done = conveyor(ops, "rollback", "--env", "production", "--json")
            returned = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"rollback failed: {done.stderr.strip()}")
            deadline = time.monotonic() + 10
            while len(watcher.changed) < len(urls) and time.monotonic() < deadline:
                time.sleep(0.01)
            back = max(watcher.changed.values()) - started
            found.append({"traffic_back_s": back, "returned_s": returned})
            time.sleep(0.5)
    finally:
        watcher.close()
    return found


def _haproxy_cfg(port: int, urls: list[str]) -> str:
    servers = "\n".join(
        f"    server r{i} {u.removeprefix('http://')} check inter 500ms" for i, u in enumerate(urls)
    )
    return (
        "global\n    maxconn 4000\ndefaults\n    mode http\n    timeout connect 2s\n"
        "    timeout client 30s\n    timeout server 30s\n"
        f"frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n"
        f"backend be\n    balance roundrobin\n    option httpchk GET /health\n{servers}\n"
    )


def measure_throughput(work: Path, urls: list[str], duration: float) -> dict[str, Any]:
    """Requests/s through HAProxy over ``urls`` with wrk; non-2xx answers and socket errors."""
    haproxy, wrk = shutil.which("haproxy") or "/usr/sbin/haproxy", shutil.which("wrk")
    if not Path(haproxy).exists() or wrk is None:
        return {"skipped": "haproxy or wrk is not installed (make test-tools; apt-get install wrk)"}
    port = free_port()
    cfg = work / f"haproxy-{len(urls)}.cfg"
    cfg.write_text(_haproxy_cfg(port, urls))
    script = work / "recommend.lua"
    script.write_text(WRK_SCRIPT)
    lb = subprocess.Popen(
        [haproxy, "-f", str(cfg), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        time.sleep(1.5)  # every server's first health check passed
        done = subprocess.run(
            [wrk, "-t2", "-c16", f"-d{duration:g}s", "-s", str(script), f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=duration + 60, check=False,
        )  # fmt: skip
    finally:
        lb.terminate()
        lb.wait(10)
    text = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    latency = re.search(r"Latency\s+([\d.]+\w+)", text)
    return {
        "replicas": len(urls),
        "requests_per_s": float(rate.group(1)) if rate else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "mean_latency": latency.group(1) if latency else "-",
    }


def run(runs: int, duration: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="conveyor-bench-fleet-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        shared = work / "shared"
        shared.mkdir()
        build_project(shared)
        ports = [free_port() for _ in range(3)]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for i, port in enumerate(ports):
            folder = work / f"replica-{i}"
            folder.mkdir()
            (folder / "conveyor.yaml").write_text(_config(shared, urls, own_log=work / "logs" / str(i)))
            command = [sys.executable, "-m", "conveyor", "--project", str(folder), "serve", "--env",
                       "production", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
            log = (folder / "serve.log").open("ab")
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_env()))
        for url, process in zip(urls, processes, strict=True):
            _wait_health(url, process)
        ops3, ops1 = work / "ops3", work / "ops1"
        for folder, listed in ((ops3, urls), (ops1, urls[:1])):
            folder.mkdir()
            (folder / "conveyor.yaml").write_text(_config(shared, listed))
        for version in ("1", "2"):
            done = conveyor(ops3, "deploy", "--env", "production", "--strategy", "blue-green",
                            "--version", version, "--json")  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"deploy of version {version} failed: {done.stderr.strip()}")
        deploy_switch_ms = float(json.loads(done.stdout)["switch_ms"])
        result: dict[str, Any] = {"deploy_switch_ms_3": deploy_switch_ms}
        result["switch_ms"] = {"1": measure_switch(urls[:1], runs), "3": measure_switch(urls, runs)}
        result["rollback"] = {"1": measure_rollbacks(ops1, urls[:1], runs)}
        from conveyor.deploy import FleetClient, ServerClient  # the three replicas on one version again

        FleetClient(
            [ServerClient(u, "bench-token", environment="production") for u in urls], environment="production"
        ).switch(_primary(urls[0]))
        result["rollback"]["3"] = measure_rollbacks(ops3, urls, runs)
        result["throughput"] = [
            measure_throughput(work, urls[:1], duration),
            measure_throughput(work, urls, duration),
        ]
        return result
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


def _ms(values: list[float]) -> tuple[str, str]:
    return f"{statistics.median(values):.1f} ms", f"{max(values):.1f} ms"


def _s(values: list[float]) -> tuple[str, str]:
    return f"{statistics.median(values):.2f} s", f"{max(values):.2f} s"


def _row(measure: str, replicas: str, cells: tuple[str, str] | tuple[str]) -> str:
    return f"| {measure} | {replicas} | " + " | ".join(cells) + " |"


def table(result: dict[str, Any], runs: int) -> str:
    rows = ["| measure | replicas | median | max |", "|---|---:|---:|---:|"]
    for n in ("1", "3"):
        rows.append(
            _row("switch: admin fan-out (read all, switch all in parallel)", n, _ms(result["switch_ms"][n]))
        )
    deploy_ms = f"{result['deploy_switch_ms_3']:.1f} ms"
    rows.append(_row("switch: inside `conveyor deploy --strategy blue-green`", "3", (deploy_ms, "")))
    for n in ("1", "3"):
        back = [r["traffic_back_s"] for r in result["rollback"][n]]
        ret = [r["returned_s"] for r in result["rollback"][n]]
        rows.append(_row("rollback: command start → traffic back on every replica", n, _s(back)))
        rows.append(_row("rollback: command start → command returns", n, _s(ret)))
    lines = [f"{runs} switches and {runs} rollbacks per replica count", "", *rows, ""]
    through = result["throughput"]
    if "skipped" in through[0]:
        lines.append(f"throughput: skipped ({through[0]['skipped']})")
        return "\n".join(lines)
    lines += [
        "Throughput through HAProxy (wrk, 2 threads, 16 connections, POST /recommend, one run):",
        "",
        "| replicas | requests/s | requests | non-2xx | socket errors | mean latency |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for t in through:
        lines.append(
            f"| {t['replicas']} | {t['requests_per_s']:.0f} | {t['requests']} | {t['non_2xx']} | "
            f"{t['socket_errors']} | {t['mean_latency']} |"
        )
    one, three = through[0]["requests_per_s"], through[1]["requests_per_s"]
    ratio = three / one if one else float("nan")
    lines += [
        "",
        f"ratio 3 replicas / 1 replica: {ratio:.2f} (2 cores shared by wrk, HAProxy and the replicas: "
        "CPU-bound serving cannot scale here)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="switches and rollbacks per replica count")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk load per replica count")
    args = parser.parse_args(argv)
    command = f"python -m benchmarks.fleet --runs {args.runs} --duration {args.duration:g}"
    print(environment_header("fleet", command=command), flush=True)
    result = run(args.runs, args.duration)
    print(load_line("after"))
    print()
    print(table(result, args.runs))
    print(json.dumps(result))  # one line: the recorder leaves it out of docs/benchmarks.md
    return 0


if __name__ == "__main__":
    sys.exit(main())
