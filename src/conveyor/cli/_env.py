"""``conveyor env start|stop|restart|logs --env E``: a local environment's server by hand.

Remote environments (replicas given by URL) are refused with one line: their
platform starts and stops them; ``conveyor status`` shows them.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, note

env_app = typer.Typer(
    help="Start, stop or restart a local environment's server; show its log.", no_args_is_help=True
)

EnvOpt = Annotated[str, typer.Option("--env", help="Environment from deploy.environments.")]


def _said(payload: dict[str, Any]) -> Any:
    def human(console: Console) -> None:
        pid = f" (pid {payload['pid']})" if payload.get("pid") else ""
        console.print(f"{payload['environment']} {payload['url']}: {payload['outcome']}{pid}")

    return human


def _run(action: str, env: str, json_out: bool, project: Any) -> None:
    start(json_out)
    from conveyor import deploy

    proj = load_project(project)
    if action == "stop":
        result = deploy.stop_environment(proj, env, progress=note)
    elif action == "restart":
        result = deploy.restart_environment(proj, env, progress=note)
    else:
        result = deploy.start_environment(proj, env, progress=note)
    emit({"ok": True, **result}, _said(result))


@env_app.command("start")
def env_start(env: EnvOpt = "production", json_out: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Start the server (serving the ledger's version) and its watchdog, unless it runs."""
    _run("start", env, json_out, project)


@env_app.command("stop")
def env_stop(env: EnvOpt = "production", json_out: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Stop the watchdog, then the server (SIGTERM, then SIGKILL)."""
    _run("stop", env, json_out, project)


@env_app.command("restart")
def env_restart(env: EnvOpt = "production", json_out: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Stop, then start the server."""
    _run("restart", env, json_out, project)


@env_app.command("logs")
def env_logs(
    env: EnvOpt = "production",
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many of the last lines.", min=1)] = 50,
    json_out: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """The last lines of the server's log."""
    start(json_out)
    from conveyor.deploy import environment_log

    result = environment_log(load_project(project), env, lines)

    def human(_console: Console) -> None:
        typer.echo("\n".join(result["lines"]))

    emit({"ok": True, **result}, human)


def register(app: typer.Typer) -> None:
    app.add_typer(env_app, name="env")
