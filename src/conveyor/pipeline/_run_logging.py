"""The MLflow side of ``conveyor train``: the store opened in the background, runs logged.

Importing MLflow and opening its SQLite store (on a new project: creating the
tables through MLflow's Alembic migrations) costs 3–10 s here — as much as
reading, validating and scoring together. :class:`TrackingOpener` does it on
a background thread while the data is read and the model fits, so ``train``
waits for it only if the fit was quicker. The reuse path never creates one,
so a reused run never imports MLflow.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from conveyor.errors import ConveyorError, ServiceError
from conveyor.pipeline._fingerprint import dvc_file
from conveyor.pipeline._runs import PROFILE_FILE, SCHEMA_FILE, RunOutcome, RunRecord
from conveyor.project import Project

if TYPE_CHECKING:
    import polars as pl

    from conveyor.registry import DatasetRef

T = TypeVar("T")


def _import_mlflow() -> None:
    """The modules opening the store and logging a run need (no side effect on the project)."""
    from conveyor.telemetry import disable_telemetry

    disable_telemetry()
    import mlflow.entities
    import mlflow.store.tracking.sqlalchemy_store
    import mlflow.tracking  # noqa: F401


class TrackingOpener:
    """Imports MLflow at once and opens the project's experiment when asked, off the main thread.

    Use as a context manager: ``start_import()`` right away, ``open_experiment()``
    once the data passed validation (a failed validation leaves the store
    untouched), ``experiment_id()`` when the run is ready to be logged.
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self._pool: ThreadPoolExecutor | None = None
        self._experiment: Future[str] | None = None

    def __enter__(self) -> TrackingOpener:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, task: Callable[[], T]) -> Future[T]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-mlflow")
        return self._pool.submit(task)

    def start_import(self) -> None:
        self._submit(_import_mlflow)

    def open_experiment(self) -> Future[str]:
        """Start opening the experiment (once); the data passed validation by now."""
        if self._experiment is None:
            from conveyor.registry import ensure_experiment

            project = self.project
            self._experiment = self._submit(lambda: ensure_experiment(project))
        return self._experiment

    def experiment_id(self) -> str:
        """The experiment id (waits for the background work; re-raises its error here)."""
        future = self.open_experiment()
        try:
            return future.result()
        except ConveyorError:
            raise
        except Exception as exc:  # an import or store failure on the worker thread
            raise ServiceError(
                self.project.redact(
                    f"MLflow tracking store {self.project.tracking_uri!r}: opening it failed: "
                    f"{type(exc).__name__}: {exc}"
                )
            ) from exc


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def run_name(model_type: str, now: datetime | None = None) -> str:
    """A readable MLflow run name: ``als-2026-11-29-211512`` (model type, UTC date and time)."""
    return f"{model_type}-{(now or datetime.now(UTC)):%Y-%m-%d-%H%M%S}"


def _dataset_ref(project: Project, record: RunRecord) -> DatasetRef:
    from conveyor.registry import DatasetRef

    tracked = dvc_file(project.path(record.data_path)) if record.dvc_tracked else None
    dvc = (
        tracked.relative_to(project.root).as_posix()
        if tracked and tracked.is_relative_to(project.root)
        else ""
    )
    return DatasetRef(
        path=record.data_path,
        md5=record.data_fingerprint.removeprefix("md5:"),
        dvc_file=dvc,
        rev=record.git_commit.split("+", 1)[0],
    )


def log_run(
    project: Project,
    *,
    experiment_id: str,
    record: RunRecord,
    folder: Path,
    extra: Mapping[str, Any],
    parent_run_id: str,
    train_frame: pl.DataFrame | None = None,
    target: str | None = None,
) -> str:
    """Log the MLflow run of a trained model with MLflow's run API; returns its id.

    ``mlflow.start_run`` sets MLflow's own context tags (``mlflow.user``,
    ``mlflow.source.name``/``type``, git); the project's commit overrides the git
    commit MLflow would read from the ``conveyor`` script's location. ``train_frame``
    (the rows the model was fitted on) is logged as the run's dataset input.
    """
    import mlflow
    from mlflow.entities import Metric, Param

    from conveyor.registry import tracking_client, training_dataset

    client = tracking_client(project)  # points MLflow's fluent API at the project's store too
    lineage = record.lineage()
    tags = {**lineage.to_tags(), "conveyor.run_key": record.key, "conveyor.gates": "pending"}
    tags.pop("conveyor.run_id", None)
    tags.pop("conveyor.sha256", None)
    if record.git_commit:
        tags["mlflow.source.git.commit"] = record.git_commit.split("+", 1)[0]
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    try:
        # with a tracking server, MLflow prints the run's URL on stdout when the run ends: to stderr,
        # so `--json` keeps stdout to its one object
        with (
            contextlib.redirect_stdout(sys.stderr),
            mlflow.start_run(
                experiment_id=experiment_id,
                run_name=run_name(record.model_type),
                tags=tags,
                nested=bool(parent_run_id),  # a matrix run: a child of the active parent (start_parent)
            ) as run,
        ):
            run_id = str(run.info.run_id)
            now = int(time.time() * 1000)
            params = [Param(k, str(v)[:6000]) for k, v in sorted(record.params.items())]
            params += [Param("model_type", record.model_type)]
            if "engine" in extra:  # where the model was fitted (model.engine), when not on the runner
                params += [Param("engine", str(extra["engine"]))]
            params += [Param(f"split.{k}", str(v)) for k, v in sorted(extra["split"].items())]
            metrics = [Metric(k, float(v), now, 0) for k, v in record.metrics.items() if finite(v)]
            metrics += [
                Metric(f"baseline_{k}", float(v), now, 0)
                for k, v in record.baseline_metrics.items()
                if finite(v)
            ]
            metrics.append(Metric("fit_seconds", float(extra["fit_seconds"]), now, 0))
            client.log_batch(run_id, metrics=metrics, params=params)
            if train_frame is not None:
                ref = _dataset_ref(project, record)
                name = Path(record.data_path).stem or "training-data"
                mlflow.log_input(
                    training_dataset(train_frame, ref, name=name, target=target), context="training"
                )
            client.log_artifacts(run_id, str(folder / "model"), "model")
            client.log_artifact(run_id, str(folder / SCHEMA_FILE), "data")
            client.log_artifact(run_id, str(folder / PROFILE_FILE), "data")
    except Exception as exc:  # MLflow raises MlflowException and store errors alike
        raise ServiceError(
            project.redact(
                f"MLflow tracking store {project.tracking_uri!r}: logging the run failed: "
                f"{type(exc).__name__}: {exc}"
            )
        ) from exc
    return run_id


def start_parent(project: Project, experiment_id: str) -> str:
    """The parent run that groups a matrix's runs, started with MLflow's run API (so it carries
    MLflow's user, source and git tags like the single runs) and left active: the matrix's runs
    start nested under it, and :func:`finish_parent` ends it."""
    import mlflow

    from conveyor.registry import tracking_client

    tracking_client(project)  # points MLflow's fluent API at the project's store
    try:
        run = mlflow.start_run(
            experiment_id=experiment_id, run_name=f"matrix-{datetime.now(UTC):%Y-%m-%d-%H%M%S}"
        )
        mlflow.set_tag("conveyor.matrix", "true")
    except Exception as exc:
        raise ServiceError(f"MLflow tracking store failed: {type(exc).__name__}: {exc}") from exc
    return str(run.info.run_id)


def finish_parent(
    project: Project, parent: str, done: list[RunOutcome], key: Callable[[RunOutcome], float]
) -> None:
    """Tag the matrix's parent run with its runs and the best of them (by ``key``)."""
    from conveyor.registry import tracking_client

    client = tracking_client(project)
    try:
        if done:
            best = max(done, key=key)
            client.set_tag(parent, "conveyor.best_run_id", best.record.run_id)
            client.set_tag(parent, "conveyor.runs", ",".join(o.record.run_id for o in done))
        import mlflow

        active = mlflow.active_run()
        if active is not None and active.info.run_id == parent:
            mlflow.end_run(status="FINISHED" if done else "FAILED")
        else:
            client.set_terminated(parent, status="FINISHED" if done else "FAILED")
    except ConveyorError:
        raise
    except Exception as exc:
        raise ServiceError(f"MLflow tracking store failed: {type(exc).__name__}: {exc}") from exc
