"""A real HTTP receiver on 127.0.0.1 standing in for Slack, Discord and GitHub.

It records every request (method, path, headers, JSON body, arrival time) and
answers from a queue of planned responses (``plan(500)``, ``plan(429,
retry_after="1")``, ``plan(delay=0.5)``, ``plan(drop=True)``: read the
request, then hang up without answering), then with the receivers' usual
success: 204 for a GitHub dispatch, 200 ``ok`` otherwise. No mock objects:
the code under test opens real sockets.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Planned:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b"ok"
    drop: bool = False


class Receiver:
    """A ThreadingHTTPServer bound to a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._plan: deque[Planned] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -----------------------------------------------------------
    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    planned = receiver._plan.popleft() if receiver._plan else None
                    receiver.requests.append(
                        Received(
                            "POST",
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                        )
                    )
                if planned is None:
                    planned = Planned(204, body=b"") if self.path.endswith("/dispatches") else Planned()
                if planned.delay:
                    time.sleep(planned.delay)
                if planned.drop:
                    self.close_connection = True  # no status line: the client sees the connection close
                    return
                try:
                    self.send_response(planned.status)
                    for key, value in planned.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(planned.body)))
                    self.end_headers()
                    if planned.body:
                        self.wfile.write(planned.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def plan(
        self,
        status: int = 200,
        *,
        retry_after: str | None = None,
        delay: float = 0.0,
        times: int = 1,
        drop: bool = False,
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            for _ in range(times):
                self._plan.append(Planned(status, headers, delay, drop=drop))

    # -- reading -----------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()
