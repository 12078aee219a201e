"""``conveyor judge``: serve the canary verdict for Argo Rollouts and Flagger (docs/deploy.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.cli._options import ProjectOpt, load_project

DEFAULT_PORT = 8790
LOOPBACK = "127.0.0.1"

JudgePort = Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")]
JudgeHost = Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 in a container).")]


def judge(port: JudgePort = DEFAULT_PORT, host: JudgeHost = LOOPBACK, project: ProjectOpt = None) -> None:
    """Serve GET /v1/canary and POST /v1/flagger: the canary verdict from the request logs."""
    proj = load_project(project)
    from conveyor.cli._serve import serve_app
    from conveyor.judge import create_judge_app

    serve_app(
        create_judge_app(proj), host, port, f"canary judge of {proj.settings.project.name}", "/v1/canary"
    )


def register(app: typer.Typer) -> None:
    app.command("judge")(judge)
