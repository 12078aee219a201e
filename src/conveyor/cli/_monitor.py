"""Monitoring commands: ``monitor`` and ``alert``."""

from __future__ import annotations

import typer

from conveyor.cli._options import not_built

alert_app = typer.Typer(help="Alert channels (Slack, Discord, webhooks).", no_args_is_help=True)


def monitor() -> None:
    """Check live drift and performance since the last run; exit 1 when a check fails."""
    not_built("monitor", "Monitoring")


@alert_app.command("test")
def alert_test() -> None:
    """Send a test message to every configured channel."""
    not_built("alert test", "Monitoring")


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)
    app.add_typer(alert_app, name="alert")
