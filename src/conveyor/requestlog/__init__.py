"""The request log: its location, schema, writer and reader (Parquet files, docs/serving.md).

One owner for the format: the server writes it (``conveyor.serving``), the deploy
controller reads canary and A/B samples from it (``conveyor.deploy``) and the monitor
reads its windows (``conveyor.monitoring``) — none of them imports another for it.
"""

from conveyor.requestlog._location import request_log_dir, request_log_dirs
from conveyor.requestlog._log import (
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
    read_request_logs,
    scan_request_log,
)

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
    "RequestLog",
    "read_request_log",
    "read_request_logs",
    "request_log_dir",
    "request_log_dirs",
    "scan_request_log",
]
