"""Data commands: ``schema``, ``validate``, ``drift`` and ``data generate``."""

from __future__ import annotations

import typer

from conveyor.cli._options import not_built

schema_app = typer.Typer(help="Infer and edit data schemas.", no_args_is_help=True)
data_app = typer.Typer(help="Data utilities (the shop data generator).", no_args_is_help=True)


@schema_app.command("infer")
def schema_infer() -> None:
    """Infer a schema from a reference table (CSV or Parquet)."""
    not_built("schema infer", "Data checks")


def validate() -> None:
    """Check a table against its schema; exit 1 when a rule fails."""
    not_built("validate", "Data checks")


def drift() -> None:
    """Per-column drift between a reference and a current table; exit 1 on dataset drift."""
    not_built("drift", "Data checks")


@data_app.command("generate")
def data_generate() -> None:
    """Generate shop interaction data (products, users, sessions), reproducible by seed."""
    not_built("data generate", "Models")


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
    app.command("validate")(validate)
    app.command("drift")(drift)
    app.add_typer(data_app, name="data")
