"""The one definition of Conveyor's pipeline (the stage graph).

Each stage is a ``conveyor`` command with the stages it needs. The local
runner (``conveyor run``) and the generated GitHub workflows both read this
list, so what runs on GitHub is what runs on a laptop:

- ``job`` groups consecutive stages into one GitHub Actions job (the jobs are
  chained with ``needs`` in the order they first appear);
- ``environment`` names the GitHub environment of the job (its secrets are
  scoped there); a stage with an environment deploys, and deploys only run on
  the main branch and never overlap (one concurrency group per environment);
- ``inputs`` says what makes the stage out of date, for the runner's stamps
  (the stamps of the stages it needs count too);
- ``state`` names shared state the stage leaves behind or acts on (the latest
  training run): the stamp records it after the stage succeeds, and a stage
  whose state has changed since — a one-off ``conveyor train --model-type X``
  moved the latest run — is out of date;
- ``model_type_option`` is the option through which a workflow passes its
  ``model-type`` input (the matrix job and the reusable training workflow);
- ``publishes`` marks a stage that writes shared state (the registry): the
  reusable training workflow runs it only when asked to (not for the matrix
  or a pull request).

The tuple is validated when the module is imported (unique names, needs
that point backwards, contiguous jobs with one environment each). It is plain
data below every package: ``conveyor.pipeline`` runs it and writes workflows
from it, the monitor's retraining policy runs its stages, neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from conveyor.errors import UsageError


class StageInput(StrEnum):
    """What a stage reads, resolved against a project by the runner."""

    DATA = "data"  # data.source (a file or a folder)
    SCHEMA = "schema"  # data.schema
    CONFIG = "config"  # conveyor.yaml
    CODE = "code"  # the project's src/ and requirements, and Conveyor's version
    RUN = "run"  # the latest training run (what evaluate and register act on)


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: a name, the command it runs, what it needs."""

    name: str
    command: tuple[str, ...]
    needs: tuple[str, ...] = ()
    job: str = ""  # the GitHub Actions job the stage belongs to
    description: str = ""
    inputs: tuple[StageInput, ...] = ()
    state: tuple[StageInput, ...] = ()  # checked against the stamp when the runner decides
    environment: str | None = None  # GitHub environment of the job (deploy stages)
    model_type_option: str | None = None  # option receiving a workflow's model-type input
    publishes: bool = False  # writes shared state (the registry): skipped by non-publishing runs

    @property
    def command_line(self) -> str:
        """The shell form, exactly as the workflows run it: ``conveyor validate``."""
        return " ".join(("conveyor", *self.command))


_DATA = (StageInput.DATA, StageInput.SCHEMA, StageInput.CONFIG)
_ALL = (StageInput.DATA, StageInput.SCHEMA, StageInput.CONFIG, StageInput.CODE)
_RUN = (StageInput.RUN,)

PIPELINE: tuple[Stage, ...] = (
    Stage("validate", ("validate",), (), "data-validation", "data against its schema", _DATA),
    Stage("drift", ("drift",), ("validate",), "data-validation", "data against the reference profile", _DATA),
    Stage(
        "train",
        ("train",),
        ("drift",),
        "model-training",
        "tracked training run (reused when unchanged)",
        _ALL,
        state=_RUN,
        model_type_option="--model-type",
    ),
    Stage("evaluate", ("evaluate",), ("train",), "model-training", "metrics and quality gates", _ALL, _RUN),
    Stage(
        "register",
        ("register",),
        ("evaluate",),
        "model-training",
        "new registry version with lineage",
        state=_RUN,
        publishes=True,
    ),
    Stage(
        "deploy-staging",
        ("deploy", "--env", "staging"),
        ("register",),
        "model-deployment",
        "staging",
        environment="staging",
    ),
    Stage(
        "smoke",
        ("smoke", "--env", "staging"),
        ("deploy-staging",),
        "model-deployment",
        "staging smoke test",
        environment="staging",
    ),
    Stage(
        "deploy-production",
        ("deploy", "--env", "production"),
        ("smoke",),
        "production-deployment",
        "production with the configured strategy",
        environment="production",
    ),
)


def validate_pipeline(stages: Sequence[Stage]) -> None:
    """Refuse a malformed stage list: duplicate names, forward needs, split jobs."""
    seen: set[str] = set()
    jobs_done: set[str] = set()
    job_env: dict[str, str | None] = {}
    previous_job: str | None = None
    for stage in stages:
        if not stage.name or not stage.command:
            raise UsageError(f"pipeline: a stage needs a name and a command (got {stage!r})")
        if stage.name in seen:
            raise UsageError(f"pipeline: stage {stage.name!r} is defined twice")
        for need in stage.needs:
            if need not in seen:
                raise UsageError(
                    f"pipeline: stage {stage.name!r} needs {need!r}, which does not come before it"
                )
        if stage.job != previous_job:
            if stage.job in jobs_done:
                raise UsageError(f"pipeline: the stages of job {stage.job!r} are not contiguous")
            if previous_job is not None:
                jobs_done.add(previous_job)
            previous_job = stage.job
        if stage.job in job_env and job_env[stage.job] != stage.environment:
            raise UsageError(f"pipeline: job {stage.job!r} mixes environments")
        job_env[stage.job] = stage.environment
        seen.add(stage.name)


def stage_names(stages: Sequence[Stage] = PIPELINE) -> list[str]:
    return [s.name for s in stages]


def jobs(stages: Sequence[Stage] = PIPELINE) -> list[tuple[str, list[Stage]]]:
    """The jobs in pipeline order, each with its stages."""
    out: list[tuple[str, list[Stage]]] = []
    for stage in stages:
        if out and out[-1][0] == stage.job:
            out[-1][1].append(stage)
        else:
            out.append((stage.job, [stage]))
    return out


def select_stages(stages: Sequence[Stage], start: str | None = None, until: str | None = None) -> list[Stage]:
    """The stages from ``start`` to ``until`` inclusive, in pipeline order."""
    names = stage_names(stages)
    for option, value in (("--from", start), ("--until", until)):
        if value is not None and value not in names:
            raise UsageError(f"{option} {value}: no such stage (stages: {', '.join(names)})")
    first = names.index(start) if start is not None else 0
    last = names.index(until) if until is not None else len(names) - 1
    if first > last:
        raise UsageError(f"--from {start} comes after --until {until} (order: {', '.join(names)})")
    return list(stages[first : last + 1])


validate_pipeline(PIPELINE)
