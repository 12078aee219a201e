"""How ``conveyor serve`` runs the application: uvicorn, on uvloop and httptools when installed.

uvicorn's pure-Python defaults (asyncio's event loop, the h11 parser) cost about
175 µs of CPU per request here; with uvloop and httptools (the ``uvicorn[standard]``
extras, dependencies of Conveyor on Linux and macOS) about 90 µs, which doubles the
requests per second the event loop can carry (measured with wrk against
``GET /health``; see docs/benchmarks.md). ``auto`` keeps the pure-Python ones
where those packages are missing (Windows).
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn


def uvicorn_config(app: Any, *, log_level: str = "warning") -> uvicorn.Config:
    """The uvicorn configuration of the model server (no access log: the request log has it)."""
    return uvicorn.Config(app, loop="auto", http="auto", log_level=log_level, access_log=False, lifespan="on")


def run_server(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on the bound, listening ``sock`` until SIGTERM or SIGINT."""
    uvicorn.Server(uvicorn_config(app)).run(sockets=[sock])
