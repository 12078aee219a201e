"""The request log: its location, schema, writer and reader (Parquet files, docs/serving.md).

One owner for the format: the server writes it (``conveyor.serving``), the deploy
controller reads canary and A/B samples from it (``conveyor.deploy``) and the monitor
reads its windows (``conveyor.monitoring``) — none of them imports another for it. The log
lives in a local folder (one laptop) or under an S3 prefix (a team): ``_location``, ``_sink``.
"""

from conveyor.requestlog._location import (
    RequestLogLocation,
    S3Location,
    request_log_dir,
    request_log_location,
    request_log_locations,
)
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
from conveyor.requestlog._reports import PIPELINE_REPORTS, publish_reports

__all__ = [
    "CLIENT_ERROR",
    "FEEDBACK",
    "FEEDBACK_SCHEMA",
    "MODEL_ERROR",
    "OK",
    "OUTCOMES",
    "PIPELINE_REPORTS",
    "PREDICTIONS",
    "PREDICTION_SCHEMA",
    "SERVER_ERROR",
    "RequestLog",
    "RequestLogLocation",
    "S3Location",
    "publish_reports",
    "read_request_log",
    "read_request_logs",
    "request_log_dir",
    "request_log_location",
    "request_log_locations",
    "scan_request_log",
]
