"""``conveyor ui``: the read-only operations page of the project (docs/ui.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.cli._options import ProjectOpt, load_project
from conveyor.cli._output import note

DEFAULT_PORT = 8780
LOOPBACK = "127.0.0.1"


def ui(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free port).")
    ] = DEFAULT_PORT,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = LOOPBACK,
    project: ProjectOpt = None,
) -> None:
    """Serve the read-only operations page: environments, models, the A/B test."""
    proj = load_project(project)
    from conveyor.cli._serve import _bind
    from conveyor.extensions import require_extra

    # what the page needs beyond the core install (Jinja2, FastAPI and uvicorn are core): FastAPI's
    # form parser for the actions' posts, which FastAPI refuses to build the app without
    require_extra("python_multipart", "ui", "conveyor ui", distribution="python-multipart")
    from conveyor.serving import run_server
    from conveyor.ui import create_ui_app

    app = create_ui_app(proj)
    sock = _bind(host, port)
    note(f"operations page of {proj.settings.project.name} on http://{host}:{sock.getsockname()[1]}")
    run_server(app, sock)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
