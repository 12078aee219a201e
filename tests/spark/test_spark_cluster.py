"""Running the training on a cluster: the Databricks job, and the workflows' spark-submit step.

The Databricks body is checked against the Databricks SDK's own model of the Jobs API
(``databricks.sdk.service.jobs.JobSettings``, generated from the published API specification):
every key we write must survive its round trip. The workflow's spark-submit line is run as the
generated workflow runs it — a real ``spark-submit`` from the PySpark package, ``local[2]`` — and
must leave a trained, tracked model behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from spark_support import SPARK_TESTS, SPARK_YAML, small_log

from conveyor.pipeline._workflows import REUSABLE
from conveyor.telemetry import TELEMETRY_OPT_OUT

pytestmark = SPARK_TESTS

DATABRICKS = """\
  databricks:
    spark_version: 15.4.x-scala2.12
    node_type_id: i3.xlarge
    num_workers: 3
    project_dir: /Workspace/Repos/team/shop
"""


def _project(
    root: Path, *, model: str = "engine: spark", extra: str = "", spark_yaml: str = SPARK_YAML
) -> Path:
    (root / "data" / "raw").mkdir(parents=True)
    (root / "conveyor.yaml").write_text(
        f"project: {{name: shop}}\nmodel: {{{model}, embedding_dim: 8, epochs: 3}}\n{spark_yaml}{extra}"
    )
    small_log(900).write_parquet(root / "data" / "raw" / "interactions.parquet")
    return root


def test_databricks_job_is_a_jobs_create_body_of_the_project(
    cli: Callable[..., object], tmp_path: Path
) -> None:
    from databricks.sdk.service.jobs import JobSettings

    root = _project(tmp_path / "shop", spark_yaml=SPARK_YAML + DATABRICKS)
    result = cli("--project", root, "spark", "databricks-job", "--json")
    assert result.exit_code == 0, result.stderr
    job = result.json()["job"]
    assert JobSettings.from_dict(job).as_dict() == job  # nothing the API does not know, nothing lost
    (task,) = job["tasks"]
    assert task["task_key"] == "train"
    assert task["new_cluster"] == {
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "i3.xlarge",
        "num_workers": 3,
        "spark_conf": {  # spark.conf of conveyor.yaml, as the strings Spark reads
            "spark.default.parallelism": "2",
            "spark.driver.memory": "1g",
            "spark.sql.shuffle.partitions": "2",
            "spark.ui.enabled": "false",
        },
    }
    assert task["python_wheel_task"] == {
        "package_name": "conveyor-ml",
        "entry_point": "conveyor",
        "parameters": ["--project", "/Workspace/Repos/team/shop", "train"],
    }
    (library,) = task["libraries"]
    assert library["pypi"]["package"].startswith("conveyor-ml[recommender]")  # PySpark: the runtime's
    assert job["max_concurrent_runs"] == 1

    # the console script the task names exists, under that name, in this distribution
    from importlib import metadata

    scripts = {
        ep.name: ep.value
        for ep in metadata.distribution("conveyor-ml").entry_points
        if ep.group == "console_scripts"
    }
    assert scripts["conveyor"] == "conveyor.cli:run"

    single = _project(
        tmp_path / "single", spark_yaml=SPARK_YAML + DATABRICKS.replace("num_workers: 3", "num_workers: 0")
    )
    alone = cli(
        "--project", single, "spark", "databricks-job", "--json", "--", "train", "--model-type", "als"
    )
    cluster = alone.json()["job"]["tasks"][0]["new_cluster"]
    assert cluster["custom_tags"] == {"ResourceClass": "SingleNode"}
    assert cluster["spark_conf"]["spark.databricks.cluster.profile"] == "singleNode"
    parameters = alone.json()["job"]["tasks"][0]["python_wheel_task"]["parameters"]
    assert parameters[2:] == ["train", "--model-type", "als"]


@pytest.mark.parametrize(
    ("model", "spark_yaml", "expected"),
    [
        ("engine: spark", SPARK_YAML, "spark.databricks.spark_version is not set"),
        (
            "engine: spark",
            SPARK_YAML + DATABRICKS.replace("    project_dir: /Workspace/Repos/team/shop\n", ""),
            "spark.databricks.project_dir is not set: the Databricks job needs it (e.g. project_dir: /Work",
        ),
        ("engine: local", SPARK_YAML + DATABRICKS, "set model.engine: spark"),
    ],
    ids=["no-cluster", "no-project-dir", "local-engine"],
)
def test_databricks_job_without_what_it_needs_is_one_line(
    cli: Callable[..., object], tmp_path: Path, model: str, spark_yaml: str, expected: str
) -> None:
    root = _project(tmp_path / "shop", model=model, spark_yaml=spark_yaml)
    result = cli("--project", root, "spark", "databricks-job")
    assert result.exit_code == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_workflows_training_refuses_what_it_cannot_run(cli: Callable[..., object], tmp_path: Path) -> None:
    local = _project(tmp_path / "local", model="engine: local", extra="workflows: {training: spark-submit}\n")
    refused = cli("--project", local, "config", "check")
    assert refused.exit_code == 2
    assert (
        "workflows.training: spark-submit runs the Spark training; set model.engine: spark" in refused.stderr
    )
    unknown = _project(tmp_path / "unknown", extra="workflows: {training: emr}\n")
    refused = cli("--project", unknown, "config", "check")
    assert refused.exit_code == 2
    assert "workflows.training" in refused.stderr
    assert "'runner', 'spark-submit' or 'databricks'" in refused.stderr
    schema = cli("config", "schema")
    assert json.loads(schema.stdout)["$defs"]["WorkflowTraining"]["enum"] == [
        "runner",
        "spark-submit",
        "databricks",
    ]


def test_generated_spark_submit_step_trains_a_model_on_local_2(
    cli: Callable[..., object], tmp_path: Path
) -> None:
    root = _project(tmp_path / "shop", extra="workflows: {training: spark-submit}\n")
    assert cli("--project", root, "workflows", "generate").exit_code == 0
    checked = cli("--project", root, "workflows", "check", "--json")  # actionlint, schema, zizmor
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    reusable = yaml.safe_load((root / ".github" / "workflows" / REUSABLE).read_text())
    (step,) = [s for s in reusable["jobs"]["train"]["steps"] if "train" in s.get("run", "")]
    assert step["run"] == 'conveyor spark submit -- train --model-type "$MODEL_TYPE"'

    # the step's script, as the runner runs it: bash, in the checkout, with the step's env
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, **TELEMETRY_OPT_OUT, "MODEL_TYPE": "als", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    from conveyor.pipeline._runs import RunIndex
    from conveyor.project import Project

    project = Project.load(root)
    latest = RunIndex(project).latest()  # the run evaluate and register act on
    assert latest.model_type == "als"
    assert latest.metrics["ndcg_at_10"] > latest.baseline_metrics["ndcg_at_10"]
    import mlflow

    mlflow.set_tracking_uri(project.tracking_uri)
    assert mlflow.get_run(latest.run_id).data.params["engine"] == "spark"
