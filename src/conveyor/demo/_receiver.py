"""A real local webhook receiver: the demo's stand-in for Slack, Discord or any webhook.

It is a plain HTTP server on 127.0.0.1 that records what it receives, so the
demo can show that an alert was really delivered over HTTP. Hand-written on
the standard library's ``ThreadingHTTPServer`` because it needs nothing more.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class WebhookReceiver:
    """Records every POST; use as a context manager. ``url`` is the base address."""

    host: str = "127.0.0.1"
    received: list[ReceivedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("receiver not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        received = self.received
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with lock:
                    received.append(ReceivedRequest(self.path, dict(self.headers.items()), body))
                self.send_response(204 if "/dispatches" in self.path else 200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
