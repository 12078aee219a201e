"""The stage graph, the local runner, workflow generation and checks, project templates;
the ``train`` / ``evaluate`` / ``register`` stages."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from conveyor.pipeline._data_remote import use_data_remote
from conveyor.pipeline._init import InitResult, init_project
from conveyor.pipeline._lint import Finding, check_workflows, find_tool, workflow_files
from conveyor.pipeline._requirements import ConveyorPin, conveyor_pin, requirements_lock
from conveyor.pipeline._runner import Runner, RunReport, StageOutcome, conveyor_program, stage_keys
from conveyor.pipeline._user_data import ColumnMapping
from conveyor.pipeline._workflow_steps import workflow_warnings
from conveyor.pipeline._workflows import (
    WORKFLOW_FILES,
    generate_workflows,
    render_workflow,
    run_scripts,
    write_workflows,
)
from conveyor.stage_graph import (
    PIPELINE,
    Stage,
    StageInput,
    jobs,
    select_stages,
    stage_names,
    validate_pipeline,
)

if TYPE_CHECKING:
    from conveyor.pipeline._evaluate import EvaluationResult, evaluate_latest
    from conveyor.pipeline._register import register_latest
    from conveyor.pipeline._train import TrainOptions, TrainResult, train

# The stages load Polars and the model libraries (about a second): they are resolved on first
# use (PEP 562) so that `conveyor run`, `workflows` and `init` start without them. Hand-written:
# six names do not justify a lazy-import dependency (scientific-python's lazy_loader).
_LAZY = {
    "EvaluationResult": "conveyor.pipeline._evaluate",
    "evaluate_latest": "conveyor.pipeline._evaluate",
    "register_latest": "conveyor.pipeline._register",
    "TrainOptions": "conveyor.pipeline._train",
    "TrainResult": "conveyor.pipeline._train",
    "train": "conveyor.pipeline._train",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "PIPELINE",
    "WORKFLOW_FILES",
    "ColumnMapping",
    "ConveyorPin",
    "EvaluationResult",
    "Finding",
    "InitResult",
    "RunReport",
    "Runner",
    "Stage",
    "StageInput",
    "StageOutcome",
    "TrainOptions",
    "TrainResult",
    "check_workflows",
    "conveyor_pin",
    "conveyor_program",
    "evaluate_latest",
    "find_tool",
    "generate_workflows",
    "init_project",
    "jobs",
    "register_latest",
    "render_workflow",
    "requirements_lock",
    "run_scripts",
    "select_stages",
    "stage_keys",
    "stage_names",
    "train",
    "use_data_remote",
    "validate_pipeline",
    "workflow_files",
    "workflow_warnings",
    "write_workflows",
]
