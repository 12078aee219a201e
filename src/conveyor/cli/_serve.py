"""``conveyor serve``: the model server."""

from __future__ import annotations

import typer

from conveyor.cli._options import not_built


def serve() -> None:
    """Serve model versions over HTTP (FastAPI under uvicorn)."""
    not_built("serve", "Serving")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
