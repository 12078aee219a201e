"""The ``conveyor`` command: its sub-commands and the one place errors become exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from conveyor import __version__
from conveyor.cli import (
    _canary,
    _config,
    _data,
    _datagen,
    _demo,
    _deploy,
    _env,
    _generate,
    _judge,
    _model,
    _monitor,
    _pipeline,
    _serve,
    _spark,
    _ui,
)
from conveyor.cli._options import set_global_project
from conveyor.cli._output import STATE, err, to_json
from conveyor.config import env_flag
from conveyor.errors import EXIT_CHECK_FAILED, EXIT_USAGE, CheckFailed, ConveyorError
from conveyor.outcome import CommandError, CommandOutcome, take_outcome_path, write_outcome
from conveyor.telemetry import disable_telemetry

app = typer.Typer(
    name="conveyor",
    help="Continuous integration, delivery and monitoring for ML models.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"conveyor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    project: Annotated[
        Path | None,
        typer.Option("--project", help="Project folder (holding conveyor.yaml).", show_default=False),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Continuous integration, delivery and monitoring for ML models."""
    set_global_project(project)


for module in (
    _pipeline,
    _config,
    _data,
    _datagen,
    _model,
    _serve,
    _deploy,
    _canary,
    _monitor,
    _demo,
    _ui,
    _generate,
    _judge,
    _env,
    _spark,
):
    module.register(app)


def _report_error(exc: ConveyorError) -> int:
    err.print(f"conveyor: {type(exc).__name__}: {exc}", markup=False, highlight=False)
    if STATE.json and not STATE.emitted:
        payload = exc.report if isinstance(exc, CheckFailed) and exc.report else {}
        sys.stdout.write(to_json({"ok": False, **payload, "error": exc.to_dict()}) + "\n")
    return exc.exit_code


def usage_error(message: str) -> dict[str, object]:
    return {"type": "UsageError", "message": message, "exit_code": EXIT_USAGE}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code. A parent process that set
    ``CONVEYOR_OUTCOME_FILE`` (the pipeline runner) gets the outcome there (conveyor.outcome)."""
    disable_telemetry()
    STATE.json = False
    STATE.emitted = False
    STATE.result = None
    set_global_project(None)
    outcome_file = take_outcome_path()
    error: list[CommandError] = []  # the one typed error, set by _command
    code = _command(argv if argv is not None else sys.argv[1:], error)
    if outcome_file is not None:
        write_outcome(CommandOutcome(code, error[0] if error else None, STATE.result), outcome_file)
    return code


def _command(args: list[str], error: list[CommandError]) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=args,
            prog_name="conveyor",
            standalone_mode=False,
        )
    except ConveyorError as exc:
        error.append(CommandError(type(exc).__name__, str(exc)))
        return _report_error(exc)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        error.append(CommandError("Aborted", "aborted"))
        err.print("conveyor: aborted")
        return 130
    except typer.TyperException as exc:  # Typer's (vendored Click's) usage errors
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see `{ctx.command_path} --help`)"
        error.append(CommandError("UsageError", f"{exc.format_message()}{hint}"))
        err.print(f"conveyor: error: {exc.format_message()}{hint}", markup=False, highlight=False)
        if STATE.json or "--json" in args:  # a bad option can stop parsing before the command saw --json
            sys.stdout.write(to_json({"ok": False, "error": usage_error(exc.format_message())}) + "\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        error.append(CommandError("Interrupted", "interrupted"))
        err.print("conveyor: interrupted")
        return 130
    except Exception as exc:  # a bug: one line, the traceback only on request
        if env_flag("CONVEYOR_DEBUG"):
            raise
        error.append(CommandError(type(exc).__name__, f"internal error: {exc}"))
        err.print(
            f"conveyor: internal error: {type(exc).__name__}: {exc} (set CONVEYOR_DEBUG=1 for the traceback)",
            markup=False,
            highlight=False,
        )
        if STATE.json and not STATE.emitted:
            sys.stdout.write(
                to_json(
                    {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc), "exit_code": 1}}
                )
                + "\n"
            )
        return EXIT_CHECK_FAILED
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script wrapper: exit with main's code."""
    sys.exit(main())
