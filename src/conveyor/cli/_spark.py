"""``conveyor spark``: running the project's training on a Spark cluster."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, note

spark_app = typer.Typer(help="Train on a Spark cluster (model.engine: spark).", no_args_is_help=True)

CommandArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="The conveyor command the driver runs (default: train; after `--` when it has options).",
        show_default=False,
    ),
]


@spark_app.command("submit-args")
def submit_args(command: CommandArg = None, project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Print the spark-submit command that runs `conveyor train` with spark.master and spark.conf."""
    start(json_out)
    from conveyor.spark import submit_args as build

    proj = load_project(project)
    built = build(proj.settings, proj.root, tuple(command or ["train"]))
    emit({"ok": True, "args": built.args, "shell": built.shell}, lambda c: c.print(built.shell, markup=False))


@spark_app.command("submit")
def submit(command: CommandArg = None, project: ProjectOpt = None) -> None:
    """Run the project's training through spark-submit on spark.master (what submit-args prints).

    The exit status is the conveyor command's: 0 trained, 1 a check failed, 2 bad usage.
    """
    from conveyor.spark import run_submit
    from conveyor.spark import submit_args as build

    proj = load_project(project)
    code = run_submit(build(proj.settings, proj.root, tuple(command or ["train"])))
    if code:
        raise typer.Exit(code)


@spark_app.command("databricks-job")
def databricks_job(command: CommandArg = None, project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Print the Databricks Jobs API 2.1 jobs/create body that runs `conveyor train` on a job cluster."""
    start(json_out)
    from conveyor.pipeline import conveyor_pin
    from conveyor.spark import databricks_job as build

    proj = load_project(project)
    pin = conveyor_pin(proj.settings)
    job = build(proj.settings, pin.requirement, tuple(command or ["train"]))
    if pin.warning:  # after the settings passed: a refusal stays one line
        note(f"warning: {pin.warning}")
    emit({"ok": True, "job": job}, lambda c: c.print_json(data=job))


def register(app: typer.Typer) -> None:
    app.add_typer(spark_app, name="spark")
