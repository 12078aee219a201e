"""``conveyor register``: the gated model of the latest run becomes a new registry version."""

from __future__ import annotations

from conveyor.errors import GateFailed, IntegrityError
from conveyor.pipeline._requirements import conveyor_pin
from conveyor.pipeline._runs import INPUT_EXAMPLE_FILE, RunIndex, run_dir
from conveyor.project import Project
from conveyor.registry import (
    ModelVersion,
    directory_sha256,
    get_version,
    register_version,
    tracking_client,
)

# the MLflow tag conveyor.gates a run must carry: "passed", or "not-enough-evidence" when
# evaluation.not_enough_evidence is "continue" (the local index says proceed but not passed)
_PROCEED_TAGS = {True: ("passed",), False: ("not-enough-evidence",)}


def _gates_tag(project: Project, run_id: str) -> str:
    return str(tracking_client(project).get_run(run_id).data.tags.get("conveyor.gates", ""))


def register_latest(project: Project) -> tuple[ModelVersion, bool]:
    """Register the latest run when its gates passed; returns (version, already registered)."""
    index = RunIndex(project)
    record = index.latest()
    evaluation = record.evaluation
    if evaluation is None:
        raise GateFailed(
            f"run {record.run_id} has not been through the quality gates; run `conveyor evaluate` first",
            run_id=record.run_id,
        )
    if not evaluation.get("proceed", evaluation.get("passed")):
        failed = [g["name"] for g in evaluation.get("gates", []) if g.get("verdict") == "fail"]
        if not failed:
            raise GateFailed(
                f"run {record.run_id}: not enough evidence to decide its quality gates "
                "(see `conveyor evaluate`); not registering it",
                run_id=record.run_id,
            )
        raise GateFailed(
            f"run {record.run_id} failed its quality gates ({', '.join(failed)}); not registering it",
            run_id=record.run_id,
        )
    if record.registered_version:
        return get_version(project, record.registered_version), True
    if _gates_tag(project, record.run_id) not in _PROCEED_TAGS[bool(evaluation.get("passed"))]:
        raise GateFailed(
            f"run {record.run_id} is not marked as gated in MLflow; run `conveyor evaluate` again",
            run_id=record.run_id,
        )
    model_dir = run_dir(project, record.run_id) / "model"
    if directory_sha256(model_dir) != evaluation.get("sha256"):
        raise IntegrityError(
            f"run {record.run_id}: the model files changed after evaluation; run `conveyor evaluate` again",
            path=str(model_dir),
        )
    lineage = record.lineage()
    metric = record.primary_metric
    description = (
        f"{record.model_type} trained on {record.data_path} ({record.data_fingerprint}); "
        f"{metric} = {record.metrics.get(metric)}"
    )
    example_file = run_dir(project, record.run_id) / INPUT_EXAMPLE_FILE
    example = None
    if example_file.is_file():
        import pandas as pd

        example = pd.read_json(example_file, orient="split")
    # the version's pip requirement for Conveyor is the generated project's installable pin
    # (workflows.conveyor_requirement, else how this Conveyor was installed): the same line
    # requirements.lock holds, so `mlflow models serve` can install what it names
    requirement = conveyor_pin(project.settings).requirement
    version = register_version(
        project,
        record.run_id,
        model_dir,
        lineage=lineage,
        description=description,
        input_example=example,
        pip_requirements=(requirement,),
    )
    index.update(record.run_id, registered_version=version.version)
    return version, False
