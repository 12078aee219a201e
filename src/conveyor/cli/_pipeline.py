"""Project and pipeline commands: ``init``, ``run``, ``workflows``, ``report``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, err, note
from conveyor.config import Template
from conveyor.errors import CheckFailed, OperationError, ServiceError, UsageError
from conveyor.project import Project

workflows_app = typer.Typer(help="Generate and check the GitHub Actions workflows.", no_args_is_help=True)


class ReportFormat(StrEnum):
    MD = "md"
    HTML = "html"


def init(
    directory: Annotated[Path, typer.Argument(help="Folder of the new project (created if missing).")],
    *,
    template: Annotated[
        Template, typer.Option("--template", help="Project template.")
    ] = Template.RECOMMENDER,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Start from your own CSV/Parquet file instead of the sample data."),
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="Classifier: the target column.")] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Recommender: your user column (default user_id).")
    ] = None,
    item: Annotated[
        str | None, typer.Option("--item", help="Recommender: your item column (default item_id).")
    ] = None,
    timestamp: Annotated[
        str | None,
        typer.Option(
            "--timestamp",
            help="Recommender: your timestamp column (default timestamp): datetimes, ISO 8601 strings, "
            "epoch seconds or milliseconds.",
        ),
    ] = None,
    event: Annotated[
        str | None,
        typer.Option("--event", help="Recommender: your event-type column (default: 'event' when present)."),
    ] = None,
    weight: Annotated[
        str | None, typer.Option("--weight", help="Recommender: a numeric confidence-weight column.")
    ] = None,
    remote: Annotated[
        str | None,
        typer.Option(
            "--remote",
            help="The DVC remote in S3 (s3://bucket/prefix; endpoint from AWS_ENDPOINT_URL_S3): "
            "data.remote. Default: the project's own .dvc-remote folder.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing project.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Write a ready project (conveyor.yaml, DVC, workflows) from a template."""
    start(json_out)
    from conveyor.pipeline import ColumnMapping, init_project

    columns = ColumnMapping.from_options(
        user=user, item=item, timestamp=timestamp, event=event, weight=weight
    )
    note(f"writing a {template.value} project into {directory} …")
    result = init_project(
        directory, template, data=data, target=target, force=force, columns=columns, remote=remote
    )
    for warning in result.warnings:  # on stderr in both modes: --json keeps them in its payload too
        note(f"warning: {warning}")

    def human(console: Console) -> None:
        console.print(
            f"[bold]{result.root}[/]: {result.template.value} project, {result.rows} rows in {result.data}"
        )
        if result.columns is not None:
            mapped = ", ".join(f"{role}={col}" for role, col in result.columns.items() if col is not None)
            console.print(f"columns: {mapped}; timestamps: {result.timestamps}")
        for path in result.files:
            console.print(f"  {path}")
        console.print(f"next: cd {result.root} && conveyor run")

    emit({"ok": True, **result.to_dict()}, human)


def run(
    project: ProjectOpt = None,
    start_at: Annotated[str | None, typer.Option("--from", help="First stage to run.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last stage to run.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Run up-to-date stages too.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run the pipeline locally: the same stages as the generated workflows."""
    start(json_out)
    from conveyor.pipeline import Runner

    proj = load_project(project)
    report = Runner(proj, force=force, console=err).run(start_at, until)
    payload = report.to_dict()

    def human(console: Console) -> None:
        table = Table(title="conveyor run")
        for col in ("stage", "command", "status", "time", "reason"):
            table.add_column(col)
        colours = {"ok": "green", "skipped": "dim", "failed": "red", "not-run": "dim"}
        for o in report.outcomes:
            status = f"[{colours[o.status]}]{o.status}[/]"
            seconds = f"{o.seconds:.1f} s" if o.status in ("ok", "failed") else "-"
            table.add_row(o.stage, o.command, status, seconds, o.reason)
        console.print(table)

    emit(payload, human)
    failed = report.failed
    if failed is None:
        return
    message = f"stage {failed.stage} failed ({failed.command}, exit {failed.exit_code}): {failed.reason}"
    if failed.exit_code == 2:
        raise UsageError(message, stage=failed.stage, log=failed.log)
    if failed.exit_code == 1:
        raise CheckFailed(message, report=payload, stage=failed.stage, log=failed.log)
    raise OperationError(message, stage=failed.stage, log=failed.log)


@workflows_app.command("generate")
def workflows_generate(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Write the GitHub Actions workflows from conveyor.yaml."""
    start(json_out)
    from conveyor.pipeline import conveyor_pin, workflow_warnings, write_workflows

    proj = load_project(project)
    paths = [str(p.relative_to(proj.root)) for p in write_workflows(proj)]
    pin = conveyor_pin(proj.settings)
    if pin.warning and (proj.root / "requirements.lock").is_file():
        note(f"warning: requirements.lock: {pin.warning}")
    warnings = workflow_warnings(proj.settings)
    for warning in warnings:
        note(f"warning: {warning}")

    def human(console: Console) -> None:
        for path in paths:
            console.print(f"wrote {path}")

    emit({"ok": True, "workflows": paths, "warnings": warnings}, human)


@workflows_app.command("check")
def workflows_check(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Check the workflows with actionlint, the GitHub workflow JSON schema and zizmor."""
    start(json_out)
    from conveyor.pipeline import check_workflows

    proj = load_project(project)
    files, findings = check_workflows(proj.root)
    payload = {
        "ok": not findings,
        "files": [str(f.relative_to(proj.root)) for f in files],
        "tools": ["actionlint", "check-jsonschema", "zizmor", "conveyor", "pip"],
        "findings": [f.to_dict() for f in findings],
    }

    def human(console: Console) -> None:
        if not findings:
            console.print(
                f"{len(files)} workflows pass actionlint, the GitHub workflow schema and zizmor "
                "(nothing above low); their dispatch inputs and pins check out"
            )
        for f in findings:
            console.print(f"[bold]{f.tool}[/]: {f.message}", markup=True, highlight=False)

    emit(payload, human)
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        raise CheckFailed(f"{first.tool}: {first.message}{more}", report=payload)


def report(
    *,
    project: ProjectOpt = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="md (pull-request ready) or html.")
    ] = ReportFormat.MD,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the report here (default: stdout).")
    ] = None,
    notify: Annotated[
        bool, typer.Option("--notify", help="Also send the headline to the configured alert channels.")
    ] = False,
    title: Annotated[str | None, typer.Option("--title", help="Title of the notification.")] = None,
    link: Annotated[str | None, typer.Option("--link", help="A link to add to the notification.")] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Pipeline run to report (default: the latest one).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Metrics against production, gate verdicts, drift table, A/B status of one pipeline run."""
    start(json_out)
    from conveyor.reports import (
        append_step_summary,
        headline,
        latest_pipeline_run,
        load_stage_results,
        render_html,
        render_markdown,
    )

    proj = load_project(project)
    results = load_stage_results(proj, run)
    markdown = render_markdown(proj, results)
    text = markdown if fmt is ReportFormat.MD else render_html(proj, results)
    summary = append_step_summary(markdown)
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot write: {exc.strerror}") from exc
    line = headline(proj, results)
    pipeline_run = run if run is not None else latest_pipeline_run(proj)
    from conveyor.requestlog import PIPELINE_REPORTS, publish_reports

    # a team's request log is in S3: the report goes beside it, under the pipeline run's name
    uploaded = publish_reports(
        proj, PIPELINE_REPORTS, str(pipeline_run or "latest"), {f"report.{fmt.value}": text.encode()}
    )
    payload: dict[str, object] = {
        "ok": True,
        "format": fmt.value,
        "out": str(out) if out else None,
        "uploaded": uploaded,
        "stages": sorted(results),
        "pipeline_run": pipeline_run,
        "headline": line,
        "step_summary": summary,
    }
    if notify:
        payload["notified"] = _notify(proj, title or "Conveyor report", line, link)
    if out is None and not json_out:
        payload["report"] = text

    def human(console: Console) -> None:
        if out is None:
            console.out(text, highlight=False)
        else:
            console.print(f"wrote {out}: {line}")

    emit(payload, human)


def _notify(proj: Project, title: str, line: str, link: str | None) -> list[dict[str, object]]:
    from conveyor.monitoring import send_alert

    text = line + (f"\n{link}" if link else "")
    results = send_alert(proj, title, text, {"project": proj.settings.project.name})
    if not results:
        note("no alert channels configured (alerts.channels): nothing sent")
    failed = [r for r in results if not r.ok]
    if failed:
        names = ", ".join(sorted({r.channel for r in failed}))
        raise ServiceError(f"notification failed on {names}; kept in the outbox", channels=names)
    return [r.to_dict() for r in results]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("run")(run)
    app.add_typer(workflows_app, name="workflows")
    app.command("report")(report)
