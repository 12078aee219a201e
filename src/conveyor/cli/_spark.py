"""``conveyor spark``: running the project's training on a Spark cluster."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, note
from conveyor.errors import OperationError, UsageError

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
    if proj.settings.spark.databricks.upload:
        note(
            "warning: spark.databricks.upload is done by `conveyor spark databricks-run`; "
            "this job runs whatever project_dir holds"
        )
    emit({"ok": True, "job": job}, lambda c: c.print_json(data=job))


@spark_app.command("databricks-run")
def databricks_run(
    command: CommandArg = None,
    project: ProjectOpt = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, help="Seconds the run may take; then it is cancelled (exit 1)."),
    ] = 6000.0,
    poll: Annotated[
        float, typer.Option("--poll", min=0.1, help="Seconds between two looks at the run's state.")
    ] = 10.0,
    json_out: JsonOpt = False,
) -> None:
    """Run what databricks-job prints as a one-time Databricks run (jobs/runs/submit) and wait for it.

    DATABRICKS_HOST is the workspace URL; the token is in the variable spark.databricks.token_env
    names (DATABRICKS_TOKEN). With spark.databricks.upload the files Git tracks are uploaded first to
    <project_dir>/code-<digest> and the run reads the project there (else: whatever project_dir
    holds). Each state of the run is one line; exit 0 when it succeeds, 1 when it
    fails (its state message), times out or is lost, 2 when Databricks refuses the token or the body.
    Ctrl-C cancels the run.
    """
    start(json_out)
    from rich.markup import escape

    from conveyor.config import DATABRICKS_HOST_ENV, env_flag, secret_from_env
    from conveyor.pipeline import conveyor_pin
    from conveyor.spark import (
        DatabricksRunInterrupted,
        DatabricksRunStatus,
        connect_databricks,
        follow_databricks_run,
        project_code,
        runs_submit_body,
        submit_databricks_run,
        upload_project_code,
    )
    from conveyor.spark import databricks_job as build

    proj = load_project(project)
    pin = conveyor_pin(proj.settings)
    cfg = proj.settings.spark.databricks
    commands = tuple(command or ["train"])
    body = runs_submit_body(build(proj.settings, pin.requirement, commands))  # refuses a bad setup first
    code = project_code(proj.root) if cfg.upload else None  # not a checkout, a file too big: refused here
    host = env_flag(DATABRICKS_HOST_ENV)
    if not host:
        raise UsageError(
            f"environment variable {DATABRICKS_HOST_ENV} (the Databricks workspace URL, "
            "e.g. https://dbc-1234.cloud.databricks.com) is not set"
        )
    token = secret_from_env(proj.settings.spark.databricks.token_env, purpose="the Databricks token")
    if pin.warning:
        note(f"warning: {escape(pin.warning)}")
    client = connect_databricks(host, token)
    code_json: dict[str, object] = {}
    if code is not None:
        uploaded = upload_project_code(client, code, str(cfg.project_dir), token)
        where = escape(uploaded.folder)
        if uploaded.uploaded:
            note(f"uploaded the {uploaded.files} files Git tracks (code {uploaded.digest}) to {where}")
        else:
            note(f"code {uploaded.digest} ({uploaded.files} files) is already in {where}: not uploaded again")
        body = runs_submit_body(build(proj.settings, pin.requirement, commands, uploaded.folder))
        code_json = {"code": uploaded.to_dict()}
    run_id = submit_databricks_run(client, body, token)
    note(f"submitted Databricks run {run_id} ({escape(body['run_name'])})")
    shown: list[str] = []

    def show(status: DatabricksRunStatus) -> None:
        if status.run_page_url and not shown:  # where to watch it, once
            shown.append(status.run_page_url)
            note(f"run {run_id}: {escape(status.run_page_url)}")
        note(escape(status.line))

    try:
        status = follow_databricks_run(
            client, run_id, timeout=timeout, poll=poll, token=token, on_change=show
        )
    except DatabricksRunInterrupted as exc:
        done = "cancelled" if exc.cancelled else "not cancelled: cancel it in the workspace"
        note(f"interrupted: Databricks run {run_id} {done}")
        raise
    if not status.succeeded:
        result = status.result_state or status.life_cycle_state
        reason = f": {status.state_message}" if status.state_message else ""
        raise OperationError(
            f"Databricks run {run_id} {result}{reason} ({status.run_page_url or 'no run page'})",
            **status.to_dict(),
        )
    payload = {"ok": True, **status.to_dict(), **code_json}
    emit(
        payload,
        lambda c: c.print(f"Databricks run {run_id} SUCCESS: {status.run_page_url or ''}", markup=False),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(spark_app, name="spark")
