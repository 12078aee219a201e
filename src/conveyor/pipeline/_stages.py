"""The one definition of Conveyor's pipeline.

Each stage is a ``conveyor`` command with the stages it needs. The local
runner (``conveyor run``) and the generated GitHub workflows both read this
list, so what runs on GitHub is what runs on a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: a name, the command it runs, what it needs."""

    name: str
    command: tuple[str, ...]
    needs: tuple[str, ...] = ()
    job: str = ""  # the GitHub Actions job the stage belongs to
    description: str = ""
    inputs: tuple[str, ...] = field(default_factory=tuple)


PIPELINE: tuple[Stage, ...] = (
    Stage("validate", ("validate",), (), "data-validation", "data against its schema"),
    Stage("drift", ("drift",), ("validate",), "data-validation", "data against the reference profile"),
    Stage("train", ("train",), ("drift",), "model-training", "tracked training run (reused when unchanged)"),
    Stage("evaluate", ("evaluate",), ("train",), "model-training", "metrics and quality gates"),
    Stage("register", ("register",), ("evaluate",), "model-training", "new registry version with lineage"),
    Stage("deploy-staging", ("deploy", "--env", "staging"), ("register",), "model-deployment", "staging"),
    Stage(
        "smoke", ("smoke", "--env", "staging"), ("deploy-staging",), "model-deployment", "staging smoke test"
    ),
    Stage(
        "deploy-production",
        ("deploy", "--env", "production"),
        ("smoke",),
        "model-deployment",
        "production with the configured strategy",
    ),
)


def stage_names() -> list[str]:
    return [s.name for s in PIPELINE]
