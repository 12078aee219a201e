"""MLflow tracking for a project: the embedded SQLite store or a remote server.

MLflow is imported lazily: importing it costs 2–4 s here, and commands that
do not touch the registry (the reuse check of `train`, `validate`, `drift`)
must not pay for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from conveyor.errors import ServiceError
from conveyor.project import Project
from conveyor.telemetry import disable_telemetry

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


def tracking_client(project: Project) -> MlflowClient:
    """A real MLflow client on the project's tracking URI (created on first use)."""
    disable_telemetry()
    # downloads from a server's artifact store draw a progress bar on stderr: keep it quiet
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
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
            f"MLflow tracking store {project.tracking_uri_shown!r} failed: {type(exc).__name__}",
            tracking_uri=project.tracking_uri_shown,
        ) from exc
