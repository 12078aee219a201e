"""The shared test support (tests/support.py) on known answers: ports, readiness, stopping."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support import free_environment_ports, stop_process, wait_ready


def test_every_environment_gets_a_free_port(tmp_path: Path) -> None:
    config = {"deploy": {"environments": {"staging": {"port": 0}, "production": {"port": 0}}}}
    (tmp_path / "conveyor.yaml").write_text(yaml.safe_dump(config))
    free_environment_ports(tmp_path)
    ports = [
        env["port"]
        for env in yaml.safe_load((tmp_path / "conveyor.yaml").read_text())["deploy"]["environments"].values()
    ]
    assert len(ports) == 2
    for port in ports:
        assert 1024 <= port <= 65535
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # still free


def test_wait_ready_names_a_server_that_exited() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    process.wait(30)
    with pytest.raises(AssertionError, match="server exited 3: boom"):
        wait_ready("http://127.0.0.1:9", process, seconds=30)


def test_stop_process_kills_what_ignores_sigterm() -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(120)"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"  # SIGTERM is ignored from here on
    stop_process(process, seconds=0.5)
    assert process.returncode == -9  # SIGKILL after the grace period
