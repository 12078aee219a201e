"""The ``conveyor`` command line (Typer + Rich). One module per command group."""

from conveyor.cli._app import app, main, run

__all__ = ["app", "main", "run"]
