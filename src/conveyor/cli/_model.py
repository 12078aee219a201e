"""Model commands: ``train``, ``evaluate``, ``register``."""

from __future__ import annotations

import typer

from conveyor.cli._options import not_built


def train() -> None:
    """Train (tracked in MLflow); reuses an identical earlier run unless --force."""
    not_built("train", "Models")


def evaluate() -> None:
    """Compute metrics and quality gates; exit 1 when a gate fails."""
    not_built("evaluate", "Models")


def register_model() -> None:
    """Register the gated model as a new version with its lineage."""
    not_built("register", "Models")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("register")(register_model)
