"""``conveyor data generate``: the shop data generator."""

from __future__ import annotations

import typer

from conveyor.cli._options import not_built

data_app = typer.Typer(help="Data utilities (the shop data generator).", no_args_is_help=True)


@data_app.command("generate")
def data_generate() -> None:
    """Generate shop interaction data (products, users, sessions), reproducible by seed."""
    not_built("data generate", "Models")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
