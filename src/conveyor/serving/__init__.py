"""The model server: ``create_app``, micro-batching, the traffic router, the request log."""

from conveyor.requestlog import FEEDBACK_SCHEMA, PREDICTION_SCHEMA, RequestLog, read_request_log
from conveyor.serving._app import create_app
from conveyor.serving._batcher import BatcherClosed, MicroBatcher
from conveyor.serving._http import run_server, uvicorn_config
from conveyor.serving._loader import ModelLoader, RegistryLoader, StaticLoader, VersionNotFound
from conveyor.serving._router import Routing, RoutingConflict, sticky_point

__all__ = [
    "FEEDBACK_SCHEMA",
    "PREDICTION_SCHEMA",
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
    "sticky_point",
    "uvicorn_config",
]
