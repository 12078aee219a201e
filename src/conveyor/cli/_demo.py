"""``conveyor demo``: the whole loop on generated shop data, in a fresh project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from conveyor.cli._options import JsonOpt, start
from conveyor.cli._output import emit, err
from conveyor.config import Template
from conveyor.errors import CheckFailed


def demo(
    template: Annotated[Template, typer.Option("--template", help="Reference project to run.")] = (
        Template.RECOMMENDER
    ),
    size: Annotated[
        str, typer.Option("--size", help="full (make demo) or quick (the CI test's reduced run).")
    ] = "full",
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Folder for the demo project (default: a new temporary folder)."),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the servers running at the end (stop: kill their pids).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run the whole loop on generated shop data: weeks of data → production → A/B → drift → canary."""
    start(json_out)
    from conveyor.demo import SIZES, Demo
    from conveyor.errors import UsageError

    if size not in SIZES:
        raise UsageError(f"--size {size!r}: expected one of {', '.join(SIZES)}")
    if workdir is not None:
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            probe = workdir / ".conveyor-demo-write-test"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise UsageError(f"--workdir {workdir}: not a writable folder ({exc.strerror})") from exc
    err.print(
        f"[bold]Conveyor demo[/bold] — template {template.value}, size {size}: every step below is a real "
        "`conveyor` command; only the data and the users are simulated.",
        highlight=False,
    )
    summary = Demo(workdir, template, size, err, keep).run()
    project = Path(summary.project)

    def human(console: Console) -> None:
        if not console.is_terminal:  # piped to a file: wide enough that outcomes stay on one line
            console = Console(file=console.file, width=max(console.width, 160))
        summary.render(console)
        console.print(
            f"\nProject: {project}\n"
            f"MLflow UI:  mlflow ui --backend-store-uri sqlite:///{project / '.conveyor' / 'mlflow.db'}\n"
            f"HTML report: {summary.facts.get('report', 'conveyor report --format html --out report.html')}\n"
            f"Ledger:      conveyor --project {project} status",
            highlight=False,
        )

    emit(summary.to_dict(), human)
    if not summary.ok:
        raise CheckFailed(
            f"demo: the story broke at {', '.join(summary.unexpected)}", report=summary.to_dict()
        )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
