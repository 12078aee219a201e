"""``conveyor spark``: running the project's training on a Spark cluster."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit

spark_app = typer.Typer(help="Train on a Spark cluster (model.engine: spark).", no_args_is_help=True)


@spark_app.command("submit-args")
def submit_args(
    command: Annotated[
        list[str] | None,
        typer.Argument(help="The conveyor command the driver runs (default: train).", show_default=False),
    ] = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print the spark-submit command that runs `conveyor train` with spark.master and spark.conf."""
    start(json_out)
    from conveyor.spark import submit_args as build

    proj = load_project(project)
    built = build(proj.settings, proj.root, tuple(command or ["train"]))
    emit({"ok": True, "args": built.args, "shell": built.shell}, lambda c: c.print(built.shell, markup=False))


def register(app: typer.Typer) -> None:
    app.add_typer(spark_app, name="spark")
