"""Project and pipeline commands: ``init``, ``run``, ``workflows``, ``report``, ``demo``."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from conveyor.cli._options import JsonOpt, not_built, start
from conveyor.cli._output import emit
from conveyor.pipeline import PIPELINE

workflows_app = typer.Typer(help="Generate and check the GitHub Actions workflows.", no_args_is_help=True)


def init() -> None:
    """Write a ready project (conveyor.yaml, DVC, workflows) from a template."""
    not_built("init", "GitHub Actions for real")


def run() -> None:
    """Run the pipeline locally: the same stages as the generated workflows."""
    not_built("run", "GitHub Actions for real")


@workflows_app.command("generate")
def workflows_generate() -> None:
    """Write the GitHub Actions workflows from conveyor.yaml."""
    not_built("workflows generate", "GitHub Actions for real")


@workflows_app.command("check")
def workflows_check() -> None:
    """Check the workflows with actionlint and the GitHub workflow JSON schema."""
    not_built("workflows check", "GitHub Actions for real")


def report() -> None:
    """Metrics against production, gate verdicts, drift table, A/B status (Markdown/HTML)."""
    not_built("report", "GitHub Actions for real")


def demo(json_out: JsonOpt = False) -> None:
    """Run the whole loop on generated shop data (for now: print the pipeline it will run)."""
    start(json_out)
    stages: list[dict[str, str]] = [
        {"stage": s.name, "command": "conveyor " + " ".join(s.command), "needs": ", ".join(s.needs)}
        for s in PIPELINE
    ]

    def human(console: Console) -> None:
        table = Table(title="Conveyor pipeline (the demo runs it end to end)")
        for col in ("stage", "command", "needs"):
            table.add_column(col)
        for s in stages:
            table.add_row(s["stage"], s["command"], s["needs"] or "-")
        console.print(table)

    emit({"ok": True, "stages": stages}, human)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("run")(run)
    app.add_typer(workflows_app, name="workflows")
    app.command("report")(report)
    app.command("demo")(demo)
