"""Delivery commands: ``deploy``, ``smoke``, ``rollback``, ``ab``, ``status``.

Two hidden commands run as detached helpers of those: ``watchdog`` (restarts
an environment's server when it dies) and ``sync-aliases`` (brings the
registry aliases to what the ledger says, after a rollback).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, note
from conveyor.cli._results import publish
from conveyor.config import DEPLOY_STRATEGIES, NOT_BUILT_STRATEGIES
from conveyor.errors import SmokeTestFailed, UsageError

if TYPE_CHECKING:
    from conveyor.deploy import ABResult, DeployResult
    from conveyor.project import Project

ab_app = typer.Typer(help="A/B tests decided by statistics.", no_args_is_help=True)

EnvOpt = Annotated[str, typer.Option("--env", help="Environment from deploy.environments.")]
VersionOpt = Annotated[
    str | None,
    typer.Option("--version", help="Registered version to deploy. Default: the newest.", show_default=False),
]


def _strategy_choice(value: str) -> str:
    """--strategy: one of DEPLOY_STRATEGIES (a Choice, with the reason when the value is not built)."""
    if value in NOT_BUILT_STRATEGIES:
        raise typer.BadParameter(NOT_BUILT_STRATEGIES[value])
    if value not in DEPLOY_STRATEGIES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(DEPLOY_STRATEGIES)}")
    return value


def _parse_steps(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--steps {text!r}: expected comma-separated percentages, e.g. 10,50,100") from None
    if not steps or steps != sorted(set(steps)) or any(not 0 < s <= 100 for s in steps) or steps[-1] != 100:
        raise UsageError(f"--steps {text!r}: expected increasing percentages in (0, 100] ending at 100")
    return steps


def _render_result(result: DeployResult) -> Any:
    def human(console: Console) -> None:
        console.print(f"[bold]{result.outcome}[/bold]: {result.reason}")
        if result.server:
            console.print(_versions_table(result.server))

    return human


def _versions_table(server: Mapping[str, Any]) -> Table:
    table = Table("version", "variant", "share", "loaded at", title=f"mode: {server.get('mode')}")
    for v in server.get("versions", []):
        table.add_row(str(v["version"]), str(v["variant"]), f"{float(v['share']):.0%}", str(v["loaded_at"]))
    return table


def deploy(
    env: EnvOpt = "staging",
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            parser=_strategy_choice,
            metavar=f"[{'|'.join(DEPLOY_STRATEGIES)}]",
            help="Default: deploy.strategy for production, direct elsewhere. "
            "(An A/B test is `conveyor ab start`.)",
            show_default=False,
        ),
    ] = None,
    version: VersionOpt = None,
    steps: Annotated[
        str | None, typer.Option("--steps", help="Canary steps in %, e.g. 10,50,100.", show_default=False)
    ] = None,
    interval: Annotated[
        float | None,
        typer.Option("--interval", help="Seconds of traffic analysed after each canary step.", min=0),
    ] = None,
    json_out: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Deploy the registered version to an environment with a strategy."""
    start(json_out)
    from conveyor.deploy import deploy as run_deploy

    proj = load_project(project)
    result = run_deploy(
        proj,
        env,
        strategy=strategy,
        version=version,
        steps=_parse_steps(steps),
        interval=interval,
        progress=note,
    )
    payload = {"ok": True, **result.to_dict()}
    emit(payload, _render_result(result))
    publish(proj, f"deploy-{env}", payload)


def smoke(env: EnvOpt = "staging", json_out: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Smoke-test an environment's endpoint (every replica); exit 1 on failure."""
    start(json_out)
    from conveyor.deploy import Environment, smoke_test

    proj = load_project(project)
    urls = Environment.open(proj, env).urls
    reports = [smoke_test(proj, url, expect_env=env) for url in urls]
    failing = next((r for r in reports if not r.ok), reports[0])
    payload = {"environment": env, **failing.to_dict()}
    payload["ok"] = all(r.ok for r in reports)
    payload["replicas"] = [r.to_dict() for r in reports]

    def human(console: Console) -> None:
        for report in reports:
            table = Table("check", "ok", "detail", title=f"smoke test of {env} ({report.url})")
            for check in report.checks:
                table.add_row(check.name, "yes" if check.ok else "[red]NO[/red]", check.detail)
            console.print(table)

    emit(payload, human)
    publish(proj, "smoke", payload)
    if not payload["ok"]:
        many = len(reports) > 1
        failed = ", ".join(f"{c.name} ({r.url})" if many else c.name for r in reports for c in r.failures())
        raise SmokeTestFailed(f"smoke test of {env} failed: {failed}", report=payload)


def rollback(env: EnvOpt = "production", json_out: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Switch an environment back to its previous version."""
    start(json_out)
    from conveyor.deploy import rollback as run_rollback

    result = run_rollback(load_project(project), env, progress=note)
    emit({"ok": True, **result.to_dict()}, _render_result(result))


def status(json_out: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Versions, traffic shares and recent deployments per environment."""
    start(json_out)
    from conveyor.deploy import status as run_status

    proj = load_project(project)
    result = run_status(proj)

    def human(console: Console) -> None:
        for name, env in result["environments"].items():
            state = "running" if env["running"] else "stopped"
            where = f"{len(env['replicas'])} replicas" if env.get("remote") else env["url"]
            console.print(f"[bold]{name}[/bold] {where} ({state})")
            if env.get("server"):
                console.print(_versions_table(env["server"]))
            if env.get("remote") or len(env.get("replicas", [])) > 1:
                console.print(_replicas_table(env["replicas"]))
            for key in ("in_progress", "interrupted"):
                rollout = env.get(key)
                if rollout:
                    weight = "" if rollout["weight"] is None else f" at {rollout['weight']:g} %"
                    since = f" since {rollout['weight_since'] or rollout['since']}"
                    label = key.replace("_", " ")
                    console.print(
                        f"  [yellow]{label}[/yellow]: {rollout['action']} of {rollout['version']}"
                        f"{weight}{since} by pid {rollout['pid']}: {rollout['command'] or '-'}"
                    )
            expected = env.get("expected")
            if expected:
                watchdog = env.get("watchdog")
                console.print(
                    f"  expected: {expected['primary']} (previous {expected['previous'] or '-'}); "
                    f"watchdog: {'pid ' + str(watchdog['pid']) if watchdog else 'not running'}"
                )
            if env.get("mismatch"):
                console.print(f"  [red]mismatch[/red]: {env['mismatch']}")
            if env.get("ab_test"):
                console.print(f"  A/B test: {env['ab_test']}")
            for entry in env["last_deployments"]:
                console.print(
                    f"  {entry['time']} {entry['action']} {entry['version'] or '-'} "
                    f"{entry['strategy'] or ''} {entry['outcome']} by {entry['who']}: {entry['reason']}"
                )

    foreign = [line for env in result["environments"].values() for line in env.get("foreign", [])]
    emit({"ok": not foreign, **result}, human)
    if foreign:
        raise UsageError(foreign[0])


def _replicas_table(replicas: list[dict[str, Any]]) -> Table:
    table = Table("replica", "ready", "version", "weights", "problem")
    for line in replicas:
        weights = ", ".join(f"{v} {share:.0%}" for v, share in line.get("weights", {}).items())
        table.add_row(
            line["url"],
            "yes" if line["ready"] else "[red]no[/red]",
            str(line["primary"] or "-"),
            weights or "-",
            line["error"] or "",
        )
    return table


@ab_app.command("start")
def ab_start(
    variant_ratio: Annotated[
        float | None,
        typer.Option(
            "--variant-ratio", help="Share of users sent to the variant (default deploy.ab.variant_ratio)."
        ),
    ] = None,
    version: VersionOpt = None,
    json_out: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Start an A/B test of the candidate against production."""
    start(json_out)
    from conveyor.deploy import ab_start as run_start

    proj = load_project(project)
    result = run_start(proj, variant_ratio=variant_ratio, version=version, progress=note)

    def human(console: Console) -> None:
        console.print(result.reason)
        need = result.plan.get("required_per_arm")
        console.print(
            f"users needed: {need['variant']} in the variant, {need['control']} in the control "
            "(the unit of the test is the user; a user's answers are correlated)"
            if need
            else "no baseline click-through rate yet: the sample size is planned from the control arm"
        )

    _emit_ab(proj, result, human)


def _emit_ab(proj: Project, result: ABResult, human: Callable[[Console], None]) -> None:
    payload = {"ok": True, **result.to_dict()}
    emit(payload, human)
    publish(proj, "ab", payload)


def _arms_table(result: ABResult) -> Table:
    table = Table("arm", "users", "impressions", "clicked", "CTR", "users needed")
    for name, arm in result.arms.items():
        ctr = arm.ctr
        table.add_row(
            name,
            str(arm.users),
            str(arm.impressions),
            str(arm.clicks),
            "-" if ctr is None or math.isnan(ctr) else f"{ctr:.4f}",
            str(arm.required_users or "-"),
        )
    return table


@ab_app.command("status")
def ab_status(json_out: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Click-through rate per arm so far and the sample size needed (interim: not a decision)."""
    start(json_out)
    from conveyor.deploy import ab_status as run_status

    proj = load_project(project)
    result = run_status(proj)

    def human(console: Console) -> None:
        plan = result.plan
        console.print(f"A/B test {plan['id']}: control {plan['control']}, variant {plan['variant']}")
        console.print(_arms_table(result))
        console.print(f"always-valid p-value: {result.always_valid_p:.3g}")
        console.print(f"[yellow]{result.note}[/yellow]")

    _emit_ab(proj, result, human)


@ab_app.command("conclude")
def ab_conclude(json_out: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Decide the A/B test: promote the variant only when it wins significantly."""
    start(json_out)
    from conveyor.deploy import ab_conclude as run_conclude

    proj = load_project(project)
    result = run_conclude(proj, progress=note)

    def human(console: Console) -> None:
        console.print(_arms_table(result))
        console.print(f"[bold]{result.outcome}[/bold]: {result.reason}")

    _emit_ab(proj, result, human)


def watchdog(env: EnvOpt = "production", project: ProjectOpt = None) -> None:
    """Restart the environment's server when it dies (started by deploy and rollback)."""
    from conveyor.deploy import watch

    code = watch(load_project(project), env)
    if code:
        raise typer.Exit(code)


def sync_aliases(env: EnvOpt = "production", project: ProjectOpt = None) -> None:
    """Set the environment's registry aliases to the ledger's versions (retried; started by rollback)."""
    from conveyor.deploy import sync_aliases as run_sync

    with contextlib.suppress(OSError):
        os.nice(10)  # bookkeeping in the background: the servers and the operator's next command go first
    entry = run_sync(load_project(project), env, queue=True)
    if entry is not None and entry.outcome != "ok":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("smoke")(smoke)
    app.command("rollback")(rollback)
    app.add_typer(ab_app, name="ab")
    app.command("status")(status)
    app.command("watchdog", hidden=True)(watchdog)
    app.command("sync-aliases", hidden=True)(sync_aliases)
