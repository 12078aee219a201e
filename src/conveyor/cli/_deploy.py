"""Delivery commands: ``deploy``, ``smoke``, ``rollback``, ``ab``, ``status``."""

from __future__ import annotations

import typer

from conveyor.cli._options import not_built

ab_app = typer.Typer(help="A/B tests decided by statistics.", no_args_is_help=True)


def deploy() -> None:
    """Deploy the registered version to an environment with a strategy."""
    not_built("deploy", "Deployment")


def smoke() -> None:
    """Smoke-test an environment's endpoint; exit 1 on failure."""
    not_built("smoke", "Deployment")


def rollback() -> None:
    """Switch an environment back to its previous version."""
    not_built("rollback", "Deployment")


def status() -> None:
    """Versions, traffic shares and recent deployments per environment."""
    not_built("status", "Deployment")


@ab_app.command("start")
def ab_start() -> None:
    """Start an A/B test of the candidate against production."""
    not_built("ab start", "Deployment")


@ab_app.command("status")
def ab_status() -> None:
    """Click-through rate per arm, the test so far and the sample size needed."""
    not_built("ab status", "Deployment")


@ab_app.command("conclude")
def ab_conclude() -> None:
    """Decide the A/B test: promote the variant only when it wins significantly."""
    not_built("ab conclude", "Deployment")


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("smoke")(smoke)
    app.command("rollback")(rollback)
    app.add_typer(ab_app, name="ab")
    app.command("status")(status)
