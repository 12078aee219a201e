"""What the tests share for ports and server processes on 127.0.0.1 (``from support import ...``).

Ports come from the one owner in src, :func:`conveyor.deploy.free_port` (the supervisor uses
it for its side servers, the demo for its environments). Every wait here is bounded, and a
process is stopped with SIGTERM, then SIGKILL, so no server outlives its test.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from conveyor.deploy import free_port

__all__ = ["free_environment_ports", "free_port", "stop_process", "wait_ready"]


def free_environment_ports(root: Path) -> None:
    """Give every environment in ``root/conveyor.yaml`` a port that is free now."""
    path = root / "conveyor.yaml"
    raw = yaml.safe_load(path.read_text())
    for env in raw["deploy"]["environments"].values():
        env["port"] = free_port()
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def wait_ready(url: str, process: subprocess.Popen[str], seconds: float = 180, path: str = "/ready") -> None:
    """Wait until the server ``process`` answers ``url + path`` with 200; fail if it exits (bounded:
    a start imports MLflow and loads from the registry, which took over 60 s at a load average of 30)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"server exited {process.returncode}: {stderr}")
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server not ready in {seconds:g} s")


def stop_process(process: subprocess.Popen[str], seconds: float = 20) -> None:
    """SIGTERM, then SIGKILL after ``seconds``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
