"""A registry server that hangs, answers 5xx or is not there stops a command in one line, within
``registry.timeout_seconds`` × (``registry.retries`` + 1) — not MLflow's 16 minutes.

The servers are real sockets on loopback: one that accepts connections and never answers (a hung
process: the kernel completes the handshake), one that answers 503 to everything (a proxy whose
backend is down), and a port nobody listens on. The client is MLflow's own, through Conveyor's
registry functions.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conveyor.errors import ConfigError, ServiceError
from conveyor.project import Project
from conveyor.registry import get_version, tracking_client
from support import free_port


def _project(root: Path, tracking_uri: str, timeout: int = 1, retries: int = 1) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "conveyor.yaml").write_text(
        "project: {name: shop}\n"
        f"registry: {{tracking_uri: '{tracking_uri}', timeout_seconds: {timeout}, retries: {retries}}}\n"
    )
    return Project.load(root)


@pytest.fixture
def hung() -> Iterator[str]:
    """A listening socket that never reads: connections are accepted by the kernel, never answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


class _Unavailable(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error_code": "TEMPORARILY_UNAVAILABLE"}')

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture
def unavailable() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def mlflow_env() -> Iterator[None]:
    """None of MLflow's request settings set; after the test, what they were before it."""
    settings = ("TIMEOUT", "MAX_RETRIES", "BACKOFF_FACTOR", "BACKOFF_JITTER")
    names = [f"MLFLOW_HTTP_REQUEST_{setting}" for setting in settings]
    before = {name: os.environ.pop(name, None) for name in names}
    yield
    for name, value in before.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


@pytest.mark.usefixtures("mlflow_env")
def test_a_hung_registry_is_given_up_after_its_timeout_and_retries(tmp_path: Path, hung: str) -> None:
    project = _project(tmp_path / "shop", hung, timeout=1, retries=1)
    with pytest.raises(ServiceError) as caught:
        get_version(project, "3")
    assert str(caught.value) == (
        f"model registry '{hung}': reading version 3 failed: "
        "the server gave no answer within 1 s (2 attempts; registry.timeout_seconds)"
    )


@pytest.mark.usefixtures("mlflow_env")
def test_a_registry_answering_5xx_is_one_line_after_its_retries(tmp_path: Path, unavailable: str) -> None:
    project = _project(tmp_path / "shop", unavailable, retries=2)
    with pytest.raises(ServiceError) as caught:
        get_version(project, "3")
    assert str(caught.value) == (
        f"model registry '{unavailable}': reading version 3 failed: the server answered HTTP 503 (3 attempts)"
    )


@pytest.mark.usefixtures("mlflow_env")
def test_a_registry_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    project = _project(tmp_path / "shop", url, retries=0)
    with pytest.raises(ServiceError) as caught:
        get_version(project, "3")
    assert str(caught.value) == (
        f"model registry '{url}': reading version 3 failed: cannot connect to the server (1 attempt)"
    )


@pytest.mark.usefixtures("mlflow_env")
def test_the_bounds_apply_to_a_server_only(tmp_path: Path) -> None:
    tracking_client(_project(tmp_path / "local", f"sqlite:///{tmp_path / 'mlflow.db'}"))
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ  # the embedded store makes no HTTP request
    tracking_client(_project(tmp_path / "team", "http://mlflow.internal:5000", timeout=45, retries=3))
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "45"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"


@pytest.mark.parametrize(
    ("setting", "problem"),
    [("timeout_seconds: 0", "timeout_seconds"), ("retries: -1", "retries"), ("retries: 11", "retries")],
)
def test_bounds_outside_their_range_are_refused_naming_the_key(
    tmp_path: Path, setting: str, problem: str
) -> None:
    (tmp_path / "conveyor.yaml").write_text(f"registry: {{{setting}}}\n")
    with pytest.raises(ConfigError, match=rf"registry\.{problem}"):
        Project.load(tmp_path)
