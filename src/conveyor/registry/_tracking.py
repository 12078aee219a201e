"""MLflow tracking for a project: the embedded SQLite store or a remote server.

MLflow is imported lazily: importing it costs 2–4 s here, and commands that
do not touch the registry (the reuse check of `train`, `validate`, `drift`)
must not pay for it.

A server that is down, answers 5xx or hangs stops a command within a bound:
MLflow's own client would wait 120 s per request and retry 7 times with a
doubling back-off (about 16 minutes on a hung server). Conveyor sets MLflow's
``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``_MAX_RETRIES`` / ``_BACKOFF_FACTOR`` /
``_BACKOFF_JITTER`` from ``registry.timeout_seconds`` and ``registry.retries``
for its processes (and the servers they start), so a request gives up after
at most ``(retries + 1) × timeout_seconds`` plus a few seconds of back-off;
:func:`registry_failure` turns what MLflow raises into one line.
"""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING

from conveyor.errors import ServiceError
from conveyor.project import Project
from conveyor.telemetry import disable_telemetry

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


BACKOFF_FACTOR = 1  # seconds: the retries wait 0, 2, 4 … s (urllib3's back-off), not 2, 4, 8 …
BACKOFF_JITTER = 0.5  # at most this much is added to each wait


def request_bounds(project: Project) -> dict[str, str]:
    """MLflow's HTTP settings for the project's server (see the module docstring)."""
    settings = project.settings.registry
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(settings.timeout_seconds),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(BACKOFF_FACTOR),
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": str(BACKOFF_JITTER),
    }


def tracking_client(project: Project) -> MlflowClient:
    """A real MLflow client on the project's tracking URI (created on first use)."""
    disable_telemetry()
    # downloads from a server's artifact store draw a progress bar on stderr: keep it quiet
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if project.tracking_is_remote:
        os.environ.update(request_bounds(project))  # MLflow reads them at every request
        # urllib3 logs each retry as a warning on stderr; the outcome is Conveyor's one line
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = project.tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(project: Project) -> str:
    """The id of the project's experiment, created with its artifact location if missing."""
    client = tracking_client(project)
    name = project.experiment_name
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(client.create_experiment(name, artifact_location=project.artifact_location))
    except Exception as exc:  # MLflow raises MlflowException and driver errors alike
        raise ServiceError(
            f"MLflow tracking store {project.tracking_uri_shown!r} failed: {type(exc).__name__}"
            + (f" ({registry_failure(project, exc)})" if project.tracking_is_remote else ""),
            tracking_uri=project.tracking_uri_shown,
        ) from exc


_STATUS = re.compile(r"too many (\d{3}) error responses")


def registry_failure(project: Project, exc: BaseException) -> str:
    """What went wrong with the registry, in one line without secrets.

    A server that hung, refused the connection or kept answering 5xx is named as such (MLflow's
    own text is a paragraph of urllib3 internals); anything else is MLflow's first line.
    """
    return project.redact(failure_text(exc, remote=project.tracking_is_remote))


def failure_text(exc: BaseException, *, remote: bool = True) -> str:
    """:func:`registry_failure` where no project is at hand (a version's files fetched for a load):
    the bounds are read back from the MLflow settings :func:`tracking_client` put in place."""
    text = str(exc)
    attempts = int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")) + 1
    tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
    if remote:
        # a call of the server's artifact proxy (uploads and downloads of model files) fails when
        # the store behind it (S3) does: name that store, not the server
        where = "the server's artifact store" if "mlflow-artifacts" in text else "the server"
        if "timed out" in text.lower():
            timeout = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
            return f"{where} gave no answer within {timeout} s ({tries}; registry.timeout_seconds)"
        if found := _STATUS.search(text):
            return f"{where} answered HTTP {found.group(1)} ({tries})"
        if "Connection refused" in text or "NewConnectionError" in text or "Failed to establish" in text:
            return f"cannot connect to the server ({tries})"
        if "Connection aborted" in text or "Connection reset" in text or "RemoteDisconnected" in text:
            return f"{where} dropped the connection ({tries})"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first) > 300:
        first = first[:297] + "…"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
