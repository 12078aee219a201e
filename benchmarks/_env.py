"""The environment header every benchmark prints before its figures.

A figure in docs/benchmarks.md is only worth what the machine was doing when it was measured,
so each benchmark prints, with this one helper: the date (UTC), the host and CPU model, the
cores, the RAM, the load average (1/5/15 min) at that moment, the git commit of the code
measured and the Python version. Call it once before the run and, for the load, once after
(``load_line()``) so the reader sees whether the machine got busier during the measurement.

    from benchmarks._env import environment_header, load_line
    print(environment_header("serving", command="python -m benchmarks.serving --duration 10"))
    ...
    print(load_line("after"))
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """Short hash of HEAD, with ``+dirty`` when tracked files outside docs/ have uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            # docs/ excluded: `python -m benchmarks --record` rewrites docs/benchmarks.md mid-run
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return head + ("+dirty" if dirty else "")


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


def load_line(when: str = "now") -> str:
    """One line with the load average, e.g. ``load average after: 2.31 1.80 1.02 (2 cores)``."""
    one, five, fifteen = load_average()
    return f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def environment_header(benchmark: str = "", command: str = "") -> str:
    """A few lines naming when, where and on what code a benchmark ran.

    ``benchmark`` names the section, ``command`` is the line that reproduces it; both optional.
    """
    memory_gb = psutil.virtual_memory().total / 2**30
    lines = []
    if benchmark:
        lines.append(f"benchmark: {benchmark}")
    if command:
        lines.append(f"command: {command}")
    lines += [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"machine: {socket.gethostname()}, {cpu_model()}, {platform.machine()}, "
        f"{os.cpu_count()} cores ({psutil.cpu_count(logical=False)} physical), {memory_gb:.1f} GB RAM, "
        f"{platform.system()} {platform.release()}",
        load_line("before"),
        f"git commit: {git_commit()}",
        f"python: {platform.python_version()} ({platform.python_implementation()})",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(environment_header("environment", command="python -m benchmarks._env"))
