"""Option types shared by every command, and the start of each invocation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli._output import STATE
from conveyor.project import Project

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        help="Project folder (holding conveyor.yaml). Default: found from the current directory upwards.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout, nothing else.")]

_GLOBAL_PROJECT: list[Path | None] = [None]


def set_global_project(project: Path | None) -> None:
    _GLOBAL_PROJECT[0] = project


def start(json_out: bool) -> None:
    """Record the output mode of this invocation (before anything can fail)."""
    STATE.json = json_out


def load_project(project: Path | None) -> Project:
    """The project named by the command's --project, the global one, or the cwd."""
    return Project.load(project if project is not None else _GLOBAL_PROJECT[0])


def not_built(command: str, issue: str) -> None:
    """Raise the error of a command that exists in the contract but is not built yet."""
    from conveyor.errors import NotBuiltYetError

    raise NotBuiltYetError(f"`conveyor {command}` is not built yet (planned in issue: {issue})")
