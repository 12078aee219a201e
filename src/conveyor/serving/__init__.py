"""The model server: ``create_app``, micro-batching, the traffic router, the request log.

The request-log format and readers import without the web framework (the monitor
and the canary analysis read the log); ``create_app``, ``run_server`` and
``uvicorn_config`` load FastAPI and uvicorn on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.requestlog import (
    CLIENT_ERROR,
    FEEDBACK,
    FEEDBACK_SCHEMA,
    MODEL_ERROR,
    OK,
    OUTCOMES,
    PREDICTION_SCHEMA,
    PREDICTIONS,
    SERVER_ERROR,
    RequestLog,
    read_request_log,
    scan_request_log,
)
from conveyor.serving._batcher import BatcherClosed, MicroBatcher
from conveyor.serving._loader import ModelLoader, RegistryLoader, StaticLoader, VersionNotFound
from conveyor.serving._router import Routing, RoutingConflict, sticky_point

if TYPE_CHECKING:
    from conveyor.serving._app import create_app
    from conveyor.serving._http import run_server, uvicorn_config

_LAZY = {
    "create_app": "conveyor.serving._app",
    "run_server": "conveyor.serving._http",
    "uvicorn_config": "conveyor.serving._http",
}

__all__ = [
    "CLIENT_ERROR",
    "FEEDBACK",
    "FEEDBACK_SCHEMA",
    "MODEL_ERROR",
    "OK",
    "OUTCOMES",
    "PREDICTIONS",
    "PREDICTION_SCHEMA",
    "SERVER_ERROR",
    "BatcherClosed",
    "MicroBatcher",
    "ModelLoader",
    "RegistryLoader",
    "RequestLog",
    "Routing",
    "RoutingConflict",
    "StaticLoader",
    "VersionNotFound",
    "create_app",
    "read_request_log",
    "run_server",
    "scan_request_log",
    "sticky_point",
    "uvicorn_config",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'conveyor.serving' has no attribute {name!r}")
