"""Opt out of third-party usage telemetry for Conveyor's own processes.

MLflow 3 and DVC send usage telemetry by default. Conveyor's commands, its
tests and its CI switch it off for their own processes (and the servers they
start inherit the setting); a user's other tools are not touched.
"""

from __future__ import annotations

import os

TELEMETRY_OPT_OUT = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
}


def disable_telemetry() -> None:
    """Set the opt-out variables in this process's environment."""
    for key, value in TELEMETRY_OPT_OUT.items():
        os.environ[key] = value
