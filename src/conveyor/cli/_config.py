"""``conveyor config``: show, check and describe ``conveyor.yaml``."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.syntax import Syntax

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit
from conveyor.config import dump_settings, json_schema
from conveyor.state import store_choice

config_app = typer.Typer(help="Show, check and describe conveyor.yaml.", no_args_is_help=True)


@config_app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of conveyor.yaml (for editor completion). Works anywhere."""
    start(True)
    emit(json_schema())


@config_app.command("show")
def show_cmd(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Print the effective configuration, defaults filled in."""
    start(json_out)
    proj = load_project(project)
    payload = proj.settings.model_dump(mode="json", by_alias=True)

    def human(console: Console) -> None:
        console.print(Syntax(dump_settings(proj.settings), "yaml"))

    emit(payload, human)


@config_app.command("check")
def check_cmd(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Validate conveyor.yaml and reach the state store; exit 2 naming what is wrong."""
    start(json_out)
    proj = load_project(project)
    store = store_choice(proj, connect=True)
    state = {"kind": store.kind, "location": store.location, "chosen_by": store.source}

    def human(console: Console) -> None:
        console.print(f"{proj.config_file}: valid")
        where = "the local folder" if store.kind == "local" else "PostgreSQL"
        console.print(f"state: {where} {store.location} ({store.source})", soft_wrap=True)

    emit({"ok": True, "file": str(proj.config_file), "state": state}, human)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
