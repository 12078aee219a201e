"""Monitoring commands: ``monitor`` and ``alert``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit
from conveyor.cli._results import publish
from conveyor.errors import DegradationFound, ServiceError, UsageError

alert_app = typer.Typer(help="Alert channels (Slack, Discord, webhooks).", no_args_is_help=True)


def monitor(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Look back this far (30m, 6h, 7d) instead of since the last check."),
    ] = None,
    env: Annotated[
        str, typer.Option("--env", help="Environment whose request log is checked.")
    ] = "production",
    report_dir: Annotated[
        Path | None,
        typer.Option("--report-dir", help="Write report.{json,md,html} here.", show_default=False),
    ] = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check live drift and performance since the last run; exit 1 when a check fails."""
    start(json_out)
    from conveyor.deploy import deployed_versions
    from conveyor.monitoring import parse_duration, run_monitor

    window = parse_duration(since) if since is not None else None
    proj = load_project(project)
    # the readiness check compares each server with the ledger, which deploy owns
    result = run_monitor(proj, env=env, since=window, report_dir=report_dir, deployed=deployed_versions(proj))
    report = result.report

    def human(console: Console) -> None:
        table = Table(title=f"conveyor monitor — {env} ({report['counts']['requests']} requests)")
        for col in ("check", "verdict", "summary"):
            table.add_column(col)
        for c in report["checks"]:
            table.add_row(c["name"], c["status"].replace("_", " "), c["summary"])
        console.print(table)
        if report.get("alert"):
            sent = ", ".join(f"{d['channel']}: {d['status']}" for d in report["alert"]["deliveries"])
            console.print(f"alert: {sent or 'no channel configured'}")
        retrain = report["retrain"]
        if retrain["triggered"]:
            console.print(f"retraining: {retrain['status']} ({'; '.join(retrain['reasons'])})")
        console.print(f"report: {result.files['html']}")

    emit(report, human)
    publish(proj, "monitor", report)
    if not result.ok:
        raise DegradationFound(
            f"monitor found degradation in {env}: {', '.join(result.failed_checks)}"
            + (f" (drifted: {', '.join(report['drifted_columns'])})" if report["drifted_columns"] else ""),
            report=report,
        )


@alert_app.command("test")
def alert_test(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Send a test message to every configured channel (exit 1 when a delivery fails)."""
    start(json_out)
    proj = load_project(project)
    from conveyor.monitoring import outbox_size, send_test_alert

    if not proj.settings.alerts.channels:
        raise UsageError(f"{proj.config_file}: alerts.channels is empty: add a channel (name, kind, url_env)")
    results = send_test_alert(
        proj,
        f"Test message from `conveyor alert test` in project {proj.settings.project.name}.",
        {"project": proj.settings.project.name, "kind": "test"},
    )
    failed = [r for r in results if not r.ok]
    payload = {
        "ok": not failed,
        "deliveries": [r.to_dict() for r in results],
        "outbox": outbox_size(proj),
    }

    def human(console: Console) -> None:
        table = Table(title="Alert test")
        for col in ("channel", "kind", "status", "attempts", "http", "note"):
            table.add_column(col)
        for r in results:
            table.add_row(
                r.channel, r.kind, r.status, str(r.attempts), str(r.http_status or "-"), r.error or ""
            )
        console.print(table)
        if payload["outbox"]:
            console.print(
                f"{payload['outbox']} earlier alert deliveries wait in the outbox (sent with the next alert)"
            )

    emit(payload, human)
    if failed:
        names = ", ".join(sorted({r.channel for r in failed}))
        raise ServiceError(
            f"test alert not delivered on {names} (test alerts are never queued)", channels=names
        )


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)
    app.add_typer(alert_app, name="alert")
