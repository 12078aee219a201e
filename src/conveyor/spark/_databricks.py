"""A Databricks job that runs the project's training (``conveyor spark databricks-job``).

The payload is the body of the Jobs API 2.1 ``jobs/create`` request
(``POST /api/2.1/jobs/create``, or ``databricks jobs create --json @job.json``):
one task on a new job cluster that runs Conveyor's console script
(``python_wheel_task``: package ``conveyor-ml``, entry point ``conveyor``) as
``conveyor --project PROJECT_DIR train``. The cluster is
``spark.databricks`` of ``conveyor.yaml`` (runtime, node type, workers) with
``spark.conf`` as its Spark properties; Conveyor comes from PyPI at the
project's pin with the template's model extra — not the ``spark`` extra: a
Databricks runtime has its own PySpark, which a pip-installed one would
shadow. ``spark.master`` is not used: the job cluster is the master.

The project is read from ``spark.databricks.project_dir`` (a Git folder of
the repository in the workspace, say) — whatever that folder holds, not the
code of the commit under test, unless ``spark.databricks.upload`` makes
``databricks-run`` upload the tracked files first (``_databricks_upload``);
its ``data.source`` must be readable there (a path under ``/Workspace``,
``/Volumes`` or ``/dbfs``), and its
``registry.tracking_uri`` must be a store the cluster reaches
(``databricks``, or the team's MLflow server) — the run the job logs is the
run ``evaluate`` and ``register`` then act on.

The variables the training reads on the cluster (the MLflow server's token, the
S3 keys) are ``spark.databricks.secrets``: each one a Databricks secret
reference (``{{secrets/scope/key}}`` in the cluster's ``spark_env_vars``), which
Databricks resolves on the cluster — no value is ever in the body.

``runs_submit_body`` is the same job as a one-time run (``jobs/runs/submit``,
what ``conveyor spark databricks-run`` sends; the Databricks SDK posts it to
``/api/2.2/``, 2.1 with paginated answers): the same tasks, the job's name as
the run's.
"""

from __future__ import annotations

from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from conveyor.config import DATABRICKS_REQUIRED, Settings
from conveyor.errors import UsageError
from conveyor.spark._session import conf_text
from conveyor.spark._submit import require_spark_engine

PACKAGE = "conveyor-ml"
ENTRY_POINT = "conveyor"  # [project.scripts] of pyproject.toml


def _with_extra(requirement: str, extra: str) -> str:
    """``conveyor-ml==1.2`` → ``conveyor-ml[extra]==1.2`` (URL forms keep their URL)."""
    try:
        req = Requirement(requirement)
    except InvalidRequirement as exc:
        raise UsageError(f"workflows.conveyor_requirement: not a pip requirement: {exc}") from None
    req.extras = {*req.extras, extra}
    return str(req)


def databricks_job(
    settings: Settings,
    requirement: str,
    command: tuple[str, ...] = ("train",),
    project_dir: str | None = None,
) -> dict[str, Any]:
    """The ``jobs/create`` body running ``conveyor --project DIR COMMAND`` on a new job cluster.

    ``requirement`` is how the cluster installs Conveyor (the project's pin, e.g. ``conveyor-ml==1.2``);
    ``DIR`` is ``project_dir`` when given (the uploaded code's folder), else ``spark.databricks.project_dir``.
    """
    require_spark_engine(settings)
    if not command:
        raise UsageError("no conveyor command to run on Databricks (e.g. train)")
    cfg = settings.spark.databricks
    missing = cfg.missing()
    if missing:
        key = missing[0]
        raise UsageError(
            f"spark.databricks.{key} is not set: the Databricks job needs it "
            f"(e.g. {key}: {DATABRICKS_REQUIRED[key]})"
        )
    cluster: dict[str, Any] = {
        "spark_version": cfg.spark_version,
        "node_type_id": cfg.node_type_id,
        "num_workers": cfg.num_workers,
    }
    conf = {key: conf_text(value) for key, value in sorted(settings.spark.conf.items())}
    if cfg.num_workers == 0:  # Databricks' single-node cluster: the driver runs the tasks
        conf.setdefault("spark.databricks.cluster.profile", "singleNode")
        conf.setdefault("spark.master", "local[*, 4]")
        cluster["custom_tags"] = {"ResourceClass": "SingleNode"}
    if conf:
        cluster["spark_conf"] = conf
    if cfg.secrets:  # references Databricks resolves on the cluster, never the values
        cluster["spark_env_vars"] = {name: secret_reference(ref) for name, ref in sorted(cfg.secrets.items())}
    task = {
        "task_key": command[0],  # letters and dashes: the command's name
        "description": f"conveyor {' '.join(command)} (model.engine: spark)",
        "new_cluster": cluster,
        "python_wheel_task": {
            "package_name": PACKAGE,
            "entry_point": ENTRY_POINT,
            "parameters": ["--project", project_dir or str(cfg.project_dir), *command],
        },
        "libraries": [{"pypi": {"package": _with_extra(requirement, settings.project.template.value)}}],
    }
    return {
        "name": f"{settings.project.name}: conveyor {' '.join(command)}",
        "tasks": [task],
        "max_concurrent_runs": 1,  # two trainings of one project never overlap
    }


def secret_reference(scope_key: str) -> str:
    """``shop/mlflow-token`` → ``{{secrets/shop/mlflow-token}}``, the form ``spark_env_vars`` resolves."""
    return "{{secrets/" + scope_key + "}}"


def runs_submit_body(job: dict[str, Any]) -> dict[str, Any]:
    """The ``jobs/create`` body ``job`` as a one-time run (``jobs/runs/submit``): its name and tasks."""
    return {"run_name": job["name"], "tasks": job["tasks"]}


__all__ = ["databricks_job", "runs_submit_body", "secret_reference"]
