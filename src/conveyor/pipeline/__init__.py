"""The stage graph, the local runner, workflow generation and checks, project templates."""

from conveyor.pipeline._init import InitResult, init_project
from conveyor.pipeline._lint import Finding, check_workflows, find_tool, workflow_files
from conveyor.pipeline._requirements import ConveyorPin, conveyor_pin, requirements_lock
from conveyor.pipeline._runner import Runner, RunReport, StageOutcome, conveyor_program, stage_keys
from conveyor.pipeline._stages import (
    PIPELINE,
    Stage,
    StageInput,
    jobs,
    select_stages,
    stage_names,
    validate_pipeline,
)
from conveyor.pipeline._user_data import ColumnMapping
from conveyor.pipeline._workflows import (
    WORKFLOW_FILES,
    generate_workflows,
    render_workflow,
    run_scripts,
    write_workflows,
)

__all__ = [
    "PIPELINE",
    "WORKFLOW_FILES",
    "ColumnMapping",
    "ConveyorPin",
    "Finding",
    "InitResult",
    "RunReport",
    "Runner",
    "Stage",
    "StageInput",
    "StageOutcome",
    "check_workflows",
    "conveyor_pin",
    "conveyor_program",
    "find_tool",
    "generate_workflows",
    "init_project",
    "jobs",
    "render_workflow",
    "requirements_lock",
    "run_scripts",
    "select_stages",
    "stage_keys",
    "stage_names",
    "validate_pipeline",
    "workflow_files",
    "write_workflows",
]
