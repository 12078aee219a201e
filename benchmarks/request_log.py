"""What the request log costs: the server's CPU time per request at a fixed request rate.

Not the difference of two saturated throughputs (on two shared cores that difference is
smaller than the run-to-run noise): the same fixed rate of single-row ``POST /predict``
requests is sent to ``conveyor serve`` with the request log on and off, and the server
process's CPU time (user + system, all its threads, read with psutil) over the window is
divided by the requests it answered. Log on and log off alternate (on/off, off/on, ...) for
``--repetitions`` pairs, each in a fresh server; the table gives every repetition, the
medians and the spread, and the verdict rests on a one-sided 95 % upper bound of the
paired mean cost (Student t): met only when it is below 10 % of the log-off CPU. The
model is a 10-tree forest so the server's own work is a large
share of a request's CPU: the log's share is then an upper bound for larger models.

The client is an open-loop schedule in this process (request i is sent at ``i / rate``
seconds, at most 64 in flight; httpx's async client, keep-alive connections): like wrk2's
constant rate, the offered load does not slow down when the server does. After the window
the client waits ``FLUSH_WAIT`` s so the log's periodic flush of the window's records is
counted, and the same wait is counted on the log-off side (an idle server's own CPU, measured
before each window, is printed beside it). With the log on, the rows in
the written Parquet files are checked against the requests answered.

Where the cost goes: the same ``RequestLog`` code, in this process with nothing else
running, appends records shaped like the windows' requests and flushes them into files of
the size the server writes at this rate (``rate × flush_seconds`` rows) and at
``flush_rows``; the CPU time (every thread) of the request path's append and of the
writer's flush (JSON encoding, the Parquet file, the fsyncs and the rename) is divided by
the records. That is the log's own work without the machine's noise; the paired windows
say whether it shows up in a real server at all.

Run: ``python -m benchmarks.request_log [--rate 50] [--seconds 15] [--repetitions 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import polars as pl
import psutil

from benchmarks._env import environment_header, load_line
from benchmarks._servers import (
    Classifier,
    classifier_project,
    conveyor_command,
    median_spread,
    running,
    write_config,
)
from conveyor.config import RequestLogSection
from conveyor.deploy import free_port
from conveyor.requestlog import RequestLog
from conveyor.telemetry import TELEMETRY_OPT_OUT

TREES = 10
FLUSH_WAIT = 2.0  # > the request log's flush_seconds (1 s)
MAX_IN_FLIGHT = 64
TARGET = 0.10  # the log's CPU per request, as a share of the log-off CPU per request
FILES = 20  # files written per size in the direct measurement of the writer


@dataclass(frozen=True)
class Window:
    log: bool
    repetition: int
    offered_rate: float
    achieved_rate: float
    answered: int
    failed: int
    cpu_s: float
    cpu_us_per_request: float
    logged_rows: int | None
    idle_cpu_ms_per_s: float  # the same server with no requests, before the warm-up


async def fixed_rate(
    url: str, body: dict[str, object], rate: float, seconds: float
) -> tuple[int, int, float]:
    """Send ``rate * seconds`` requests on an open-loop schedule; (answered 200, failed, elapsed s)."""
    total = round(rate * seconds)
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    counts = {"ok": 0, "failed": 0}
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one() -> None:
            try:
                response = await client.post(url, json=body)
                counts["ok" if response.status_code == 200 else "failed"] += 1
            except httpx.HTTPError:
                counts["failed"] += 1
            finally:
                gate.release()

        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()  # bounded: at most MAX_IN_FLIGHT outstanding
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    return counts["ok"], counts["failed"], elapsed


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def logged_rows(root: Path) -> int:
    files = sorted((root / ".conveyor" / "requests").rglob("predictions-*.parquet"))
    return int(pl.scan_parquet(files).select(pl.len()).collect().item()) if files else 0


def window(clf: Classifier, log: bool, repetition: int, rate: float, seconds: float, work: Path) -> Window:
    port = free_port()
    write_config(clf.root, "classifier", port, log=log)
    requests_dir = clf.root / ".conveyor" / "requests"
    before_rows = logged_rows(clf.root) if requests_dir.exists() else 0
    url = f"http://127.0.0.1:{port}"
    body: dict[str, object] = {"features": clf.row}
    with running(conveyor_command(clf.root), f"{url}/ready", work / "servers.log") as server:
        process = psutil.Process(server.pid)
        idle = cpu_seconds(process)
        time.sleep(FLUSH_WAIT)
        idle = (cpu_seconds(process) - idle) / FLUSH_WAIT
        asyncio.run(fixed_rate(f"{url}/predict", body, rate, min(2.0, seconds)))  # warm-up
        time.sleep(FLUSH_WAIT)
        start_rows = logged_rows(clf.root) if log else 0
        cpu = cpu_seconds(process)
        answered, failed, elapsed = asyncio.run(fixed_rate(f"{url}/predict", body, rate, seconds))
        time.sleep(FLUSH_WAIT)
        cpu = cpu_seconds(process) - cpu
        rows = logged_rows(clf.root) - start_rows if log else None
    if not log and logged_rows(clf.root) != before_rows:
        raise RuntimeError("the request log wrote rows while switched off")
    return Window(
        log,
        repetition,
        rate,
        answered / elapsed,
        answered,
        failed,
        cpu,
        cpu / max(1, answered) * 1e6,
        rows,
        idle * 1000,
    )


def writer_cost(row: dict[str, float], rows_per_file: int, files: int = FILES) -> tuple[float, float]:
    """CPU µs per record of the log's two halves: the request path's append, the writer's flush.

    The writer thread is not started: ``flush()`` runs here, so the process's CPU time over
    it is the flush's (polars' own threads included).
    """
    output = {"predictions": [1], "probabilities": [[0.3, 0.7]]}
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-writer-") as tmp:
        log = RequestLog(Path(tmp), flush_rows=10**9, flush_seconds=3600.0)

        def append() -> None:
            for i in range(rows_per_file):
                log.log_prediction(
                    request_id=f"r{i:08d}", env="bench", model_version="1", variant="primary",
                    endpoint="/predict", user_id=None, features=[dict(row)], output=output,
                    latency_ms=2.5, status=200, warnings=[],
                )  # fmt: skip

        append()
        log.flush()  # warm-up: imports, the first file
        appended = flushed = 0.0
        for _ in range(files):
            start = time.process_time()
            append()
            appended += time.process_time() - start
            start = time.process_time()
            log.flush()
            flushed += time.process_time() - start
    records = files * rows_per_file
    return appended / records * 1e6, flushed / records * 1e6


def writer_table(row: dict[str, float], rate: float, off_median_us: float) -> str:
    defaults = RequestLogSection()
    at_rate = max(1, min(defaults.flush_rows, round(rate * defaults.flush_seconds)))
    lines = [
        f"Where the log's CPU goes: the RequestLog code alone, in this process, {FILES} files per row",
        "",
        "| rows per file | when | request path: append (µs per request) | writer: JSON, Parquet, fsync, "
        "rename (µs per request) | total (µs per request) | share of the log-off CPU per request (median) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for rows, when in (
        (at_rate, f"{rate:g} req/s, a file every flush_seconds ({defaults.flush_seconds:g} s)"),
        (defaults.flush_rows, f"≥ {defaults.flush_rows / defaults.flush_seconds:,.0f} req/s: a file every "
                              f"flush_rows ({defaults.flush_rows:,})"),
    ):  # fmt: skip
        append, flush = writer_cost(row, rows)
        lines.append(
            f"| {rows:,} | {when} | {append:.1f} | {flush:.1f} | {append + flush:.1f} "
            f"| {(append + flush) / off_median_us:.1%} |"
        )
    return "\n".join(lines)


def upper_bound(differences: list[float], level: float = 0.95) -> float:
    """One-sided upper confidence bound on the mean of paired differences (Student t);
    infinite with fewer than two pairs (no spread to go on)."""
    from scipy import stats

    n = len(differences)
    if n < 2:
        return float("inf")
    spread = statistics.stdev(differences) / math.sqrt(n)
    return statistics.fmean(differences) + float(stats.t.ppf(level, n - 1)) * spread


def table(windows: list[Window]) -> str:
    lines = [
        "| repetition | request log | offered req/s | achieved req/s | answered | failed | "
        "server CPU s | CPU µs per request | rows logged | idle CPU ms/s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in windows:
        rows = "–" if w.logged_rows is None else f"{w.logged_rows:,}"
        lines.append(
            f"| {w.repetition} | {'on' if w.log else 'off'} | {w.offered_rate:g} | {w.achieved_rate:.1f} | "
            f"{w.answered:,} | {w.failed} | {w.cpu_s:.2f} | {w.cpu_us_per_request:.0f} | {rows} | "
            f"{w.idle_cpu_ms_per_s:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.request_log", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per window (default 15)")
    parser.add_argument("--repetitions", type=int, default=4, help="log on/off pairs (default 4)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.repetitions < 1:
        parser.error("--rate and --seconds must be > 0, --repetitions at least 1")
    os.environ.update(TELEMETRY_OPT_OUT)
    command = (
        f"python -m benchmarks.request_log --rate {args.rate:g} --seconds {args.seconds:g} "
        f"--repetitions {args.repetitions}"
    )
    print(environment_header("request log cost", command=command), flush=True)
    windows: list[Window] = []
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-request-log-") as tmp:
        work = Path(tmp)
        clf = classifier_project(work / "classifier", free_port(), TREES)
        for repetition in range(1, args.repetitions + 1):
            order = (True, False) if repetition % 2 else (False, True)
            for log in order:
                w = window(clf, log, repetition, args.rate, args.seconds, work)
                print(
                    f"  repetition {repetition}, log {'on ' if log else 'off'}: {w.achieved_rate:.1f} req/s "
                    f"achieved, {w.answered} answered, {w.failed} failed, server CPU {w.cpu_s:.2f} s = "
                    f"{w.cpu_us_per_request:.0f} µs per request",
                    flush=True,
                )
                windows.append(w)
    on = [w.cpu_us_per_request for w in windows if w.log]
    off = [w.cpu_us_per_request for w in windows if not w.log]
    (on_med, on_lo, on_hi), (off_med, off_lo, off_hi) = median_spread(on), median_spread(off)
    pairs = [a - b for a, b in zip(on, off, strict=True)]
    diff_med, diff_lo, diff_hi = median_spread(pairs)
    print(f"\n{load_line('after')}\n")
    print(table(windows))
    print()
    print(
        f"CPU per request, median (range) over {args.repetitions} repetitions at {args.rate:g} req/s: "
        f"log on {on_med:.0f} µs ({on_lo:.0f}–{on_hi:.0f}), "
        f"log off {off_med:.0f} µs ({off_lo:.0f}–{off_hi:.0f}); "
        f"the log costs {diff_med:+.0f} µs per request (per pair {diff_lo:+.0f} to {diff_hi:+.0f}), "
        f"{diff_med / off_med:+.1%} of the log-off CPU "
        f"(per pair {diff_lo / off_med:+.1%} to {diff_hi / off_med:+.1%})"
    )
    mean, bound = statistics.fmean(pairs), upper_bound(pairs)
    verdict = "met" if bound / off_med < TARGET else "NOT shown (the bound is at or above the target)"
    print(
        f"paired mean cost {mean:+.0f} µs ({mean / off_med:+.1%}); one-sided 95 % upper bound "
        f"(Student t over the {len(pairs)} pairs) {bound:+.0f} µs ({bound / off_med:+.1%} of the log-off CPU)"
    )
    print(f"target: the request log costs under {TARGET:.0%} of a request's server CPU — {verdict}")
    failed = sum(w.failed for w in windows)
    unlogged = [w for w in windows if w.log and w.logged_rows != w.answered]
    print(
        f"failed requests: {failed}; log-on windows whose logged rows differ from the answers: "
        f"{len(unlogged)}"
    )
    print()
    print(writer_table(clf.row, args.rate, off_med), flush=True)
    print()
    summary = {
        "benchmark": "request_log",
        "windows": [asdict(w) for w in windows],
        "cpu_us_per_request_on_median": round(on_med, 1),
        "cpu_us_per_request_off_median": round(off_med, 1),
        "log_cost_us_median": round(diff_med, 1),
        "log_cost_share_median": round(diff_med / off_med, 4),
        "log_cost_us_upper_95": round(bound, 1),
        "log_cost_share_upper_95": round(bound / off_med, 4),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
