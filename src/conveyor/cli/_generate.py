"""``conveyor generate docker|kubernetes|systemd|argo``: files for the platforms teams run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from conveyor.cli._options import JsonOpt, ProjectOpt, load_project, start
from conveyor.cli._output import emit, note

generate_app = typer.Typer(
    help="Generate a Dockerfile, Kubernetes manifests, a systemd unit or the Argo Rollouts canary hook.",
    no_args_is_help=True,
)

EnvOpt = Annotated[str, typer.Option("--env", help="Environment the files serve.")]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Folder to write to. Default: the project root (docker), else deploy/<target>/<env>.",
        show_default=False,
    ),
]
ImageOpt = Annotated[
    str | None,
    typer.Option("--image", help="The serving image (default: <project>:latest).", show_default=False),
]


def _run(target: str, project: Path | None, out: Path | None, json_out: bool, **options: object) -> None:
    start(json_out)
    from conveyor.platforms import GenerateOptions, PlatformTarget, default_out, generate, write_generated

    proj = load_project(project)
    kind = PlatformTarget(target)
    generated = generate(proj, kind, GenerateOptions(**options))  # type: ignore[arg-type]
    folder = out if out is not None else default_out(proj, kind, generated.env)
    paths = write_generated(generated, folder)
    for warning in generated.warnings:
        note(f"warning: {warning}")
    payload = {"ok": True, **generated.to_dict(), "out": str(folder), "written": [str(p) for p in paths]}

    def human(console: Console) -> None:
        for path in paths:
            console.print(f"wrote {path}")
        console.print("next:")
        for command in generated.commands:
            console.print(f"  {command}", markup=False, highlight=False)

    emit(payload, human)


@generate_app.command("docker")
def docker(
    env: EnvOpt = "production", out: OutOpt = None, project: ProjectOpt = None, json_out: JsonOpt = False
) -> None:
    """Dockerfile (+ .dockerignore) of the serving image: `conveyor serve --env E`, non-root, HEALTHCHECK."""
    _run("docker", project, out, json_out, env=env)


@generate_app.command("kubernetes")
def kubernetes(
    env: EnvOpt = "production",
    image: ImageOpt = None,
    replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas",
            min=1,
            help="Pods (default: the environment's replicas, else 2).",
            show_default=False,
        ),
    ] = None,
    max_replicas: Annotated[
        int | None,
        typer.Option(
            "--max-replicas",
            min=1,
            help="Autoscaler ceiling (default: twice --replicas).",
            show_default=False,
        ),
    ] = None,
    model_version: Annotated[
        str | None,
        typer.Option(
            "--model-version",
            help="Pin the pods to this registry version (default: the environment's alias).",
            show_default=False,
        ),
    ] = None,
    out: OutOpt = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Deployment (/ready, /health probes), Service, PodDisruptionBudget, HorizontalPodAutoscaler."""
    _run(
        "kubernetes", project, out, json_out,
        env=env, image=image, replicas=replicas, max_replicas=max_replicas, model_version=model_version,
    )  # fmt: skip


@generate_app.command("systemd")
def systemd(
    env: EnvOpt = "production",
    workdir: Annotated[
        str | None,
        typer.Option(
            "--workdir",
            help="The project folder on the host (default /srv/conveyor/<project>).",
            show_default=False,
        ),
    ] = None,
    user: Annotated[str, typer.Option("--user", help="The dedicated system user.")] = "conveyor",
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Address to listen on (default: the environment's host).", show_default=False
        ),
    ] = None,
    out: OutOpt = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A systemd unit for one replica (Restart=on-failure, secrets from an env file), its env file's names."""
    _run("systemd", project, out, json_out, env=env, workdir=workdir, user=user, host=host)


@generate_app.command("argo")
def argo(
    env: EnvOpt = "production",
    image: ImageOpt = None,
    out: OutOpt = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """An Argo Rollouts AnalysisTemplate calling `conveyor judge`, and the judge's Deployment and Service."""
    _run("argo", project, out, json_out, env=env, image=image)


def register(app: typer.Typer) -> None:
    app.add_typer(generate_app, name="generate")
