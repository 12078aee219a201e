"""``conveyor serve``: the model server."""

from __future__ import annotations

import errno
import gc
import os
import socket
import sys
from typing import Annotated, Any

import typer

from conveyor.cli._options import ProjectOpt, load_project
from conveyor.cli._output import note
from conveyor.errors import UsageError

EnvOpt = Annotated[str, typer.Option("--env", help="Environment: its registry alias is served.")]
HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host", help="Address to bind. Default: the environment's host (127.0.0.1).", show_default=False
    ),
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port", min=0, max=65535, help="Port. Default: the environment's port.", show_default=False
    ),
]
VersionOpt = Annotated[
    str | None,
    typer.Option(
        "--model-version", help="Serve this registry version instead of the alias's.", show_default=False
    ),
]


def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    env: EnvOpt = "production",
    model_version: VersionOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Serve model versions over HTTP (FastAPI under uvicorn); see docs/serving.md."""
    proj = load_project(project)
    settings = proj.settings
    environment = settings.deploy.environments.get(env)
    if port is not None:
        bind_port = port
    elif environment is not None and environment.port is not None:
        bind_port = environment.port
    elif environment is not None:
        raise UsageError(
            f"--env {env}: its replicas are given by URL (deploy.environments.{env}.replicas); "
            "pass --port (and --host) for this replica"
        )
    else:
        known = ", ".join(sorted(settings.deploy.environments)) or "none"
        raise UsageError(f"--env {env}: unknown environment (known: {known}); or pass --port")
    bind_host = host or (environment.host if environment is not None else settings.serving.host)

    # Polars' thread pool would wake on every request-log flush and take both cores from the
    # event loop: one thread is plenty for a few thousand rows a second (measured: request
    # logging cost 10.5-11.2 % of /predict throughput with the default pool, 6 % with one
    # thread; docs/benchmarks.md). Set before polars is imported; a user's own value wins.
    if "polars" not in sys.modules:
        os.environ.setdefault("POLARS_MAX_THREADS", "1")
    # the port first: a collision is one line within a second, not after a long model load
    sock = _bind(bind_host, bind_port)
    from conveyor.requestlog import request_log_location
    from conveyor.serving import RegistryLoader, create_app, run_server

    loader = RegistryLoader(proj, alias=env, pinned=model_version)
    versions = loader.initial_versions()
    if not versions:
        note(f"no model version at alias '{env}': serving nothing until POST /admin/load")
    preloaded = {}
    for version in versions:
        note(f"loading model version {version} (checksum verified)")
        preloaded[version] = loader.load(version)
    request_log = settings.serving.request_log
    log_dir = None
    if request_log.enabled:
        log_dir = request_log_location(proj, env)
    app = create_app(settings, loader=loader, env=env, log_dir=log_dir, preloaded=preloaded)

    # everything loaded so far (MLflow, the models) lives for the whole process: keep it out
    # of the cyclic garbage collector, whose full passes over it stall requests for ~100 ms
    gc.collect()
    gc.freeze()
    actual = sock.getsockname()[1]
    note(f"serving {env} on http://{bind_host}:{actual} (versions: {', '.join(versions) or 'none'})")
    run_server(app, sock)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP;
    # with proto 0, Nagle's algorithm and delayed ACKs add ~40 ms to every keep-alive answer
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"--port {port}: address already in use on {host} (checked before loading any model)",
                port=port,
            ) from exc
        raise UsageError(f"--host {host} --port {port}: cannot bind: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_app(app: Any, host: str, port: int, what: str, path: str = "") -> None:
    """Bind ``host:port`` (one-line errors), say where ``what`` listens, and serve ``app`` until stopped."""
    from conveyor.serving import run_server

    sock = _bind(host, port)
    note(f"{what} on http://{host}:{sock.getsockname()[1]}{path}")
    run_server(app, sock)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
