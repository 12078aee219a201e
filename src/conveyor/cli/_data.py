"""Data-check commands: ``schema``, ``validate``, ``drift``."""

from __future__ import annotations

import typer

from conveyor.cli._options import not_built

schema_app = typer.Typer(help="Infer and edit data schemas.", no_args_is_help=True)


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


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
    app.command("validate")(validate)
    app.command("drift")(drift)
