"""What every generated file needs to know about one environment, resolved once from ``conveyor.yaml``.

The Dockerfile, the Kubernetes manifests, the systemd unit and the Argo Rollouts
template all run the same command, ``conveyor serve --env E``, with the same
secrets coming from the same environment variables; :class:`ServedEnvironment`
is that one answer, so the files cannot disagree with each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from conveyor.config import Settings
from conveyor.errors import UsageError

CONTAINER_UID = 10001  # the image's non-root user (uid and gid)
CONTAINER_USER = "conveyor"
APP_DIR = "/app"
LISTEN_ALL = "0.0.0.0"  # noqa: S104 — a container or a replica host listens beyond loopback

# Secret keys (Kubernetes Secret / systemd env file) → the variable the process reads. The S3 and
# MLflow credentials are read by boto3 and MLflow themselves; each is optional (laptop-mode projects
# have none), the admin token and the state URI are required when configured.
S3_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
S3_SETTINGS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL", "AWS_DEFAULT_REGION")
MLFLOW_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@dataclass(frozen=True)
class SecretVar:
    """One secret the server reads from its environment."""

    variable: str  # the environment variable
    key: str  # its key in the Kubernetes Secret
    required: bool
    purpose: str


@dataclass(frozen=True)
class ServedEnvironment:
    """One environment's server as every generated file runs it."""

    project: str
    env: str
    name: str  # DNS-1123 name of the workload: <project>-<env>
    port: int
    python: str
    tracking_uri: str | None
    request_log_uri: str | None
    secrets: tuple[SecretVar, ...]

    def serve_argv(self, host: str, model_version: str | None = None) -> list[str]:
        argv = ["conveyor", "serve", "--env", self.env, "--host", host, "--port", str(self.port)]
        return argv + (["--model-version", model_version] if model_version else [])


def dns_name(*parts: str) -> str:
    """A Kubernetes object name (DNS-1123 label: lower-case letters, digits, '-', at most 63)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    slug = re.sub(r"-{2,}", "-", slug)[:63].rstrip("-")
    if not slug:
        raise UsageError(f"cannot make a Kubernetes name from {'-'.join(parts)!r}")
    return slug


def _port(settings: Settings, env: str) -> int:
    environment = settings.deploy.environments[env]
    if environment.port:
        return environment.port
    for url in environment.replicas or ():  # a remote environment: the replicas' port
        parts = urlsplit(url)
        return parts.port or (443 if parts.scheme == "https" else 80)
    raise UsageError(f"deploy.environments.{env}: neither a port nor replicas")


def admin_token_variable(settings: Settings, env: str) -> str | None:
    """The variable the server of ``env`` reads its admin token from (the environment's own wins)."""
    environment = settings.deploy.environments[env]
    return getattr(environment, "admin_token_env", None) or settings.serving.admin_token_env


def state_uri_variable(settings: Settings) -> str | None:
    """The variable holding the shared state store's URI (``state.uri_env``), when configured."""
    state = getattr(settings, "state", None)
    return getattr(state, "uri_env", None) if state is not None else None


def served_environment(settings: Settings, env: str) -> ServedEnvironment:
    """Resolve ``env`` of ``settings``; a one-line UsageError when it is not an environment."""
    if env not in settings.deploy.environments:
        known = ", ".join(sorted(settings.deploy.environments)) or "none"
        raise UsageError(f"--env {env}: unknown environment (known: {known})")
    secrets: list[SecretVar] = []
    token = admin_token_variable(settings, env)
    if token:
        secrets.append(SecretVar(token, "admin-token", True, "the admin API's bearer token"))
    state = state_uri_variable(settings)
    if state:
        secrets.append(SecretVar(state, "state-uri", True, "the shared state store (postgresql://…)"))
    for var in (*S3_VARIABLES, *MLFLOW_VARIABLES):
        secrets.append(SecretVar(var, var.lower().replace("_", "-"), False, "read by boto3 / MLflow"))
    return ServedEnvironment(
        project=settings.project.name,
        env=env,
        name=dns_name(settings.project.name, env),
        port=_port(settings, env),
        python=settings.workflows.python_versions[0],
        tracking_uri=settings.registry.tracking_uri,
        request_log_uri=settings.serving.request_log.uri,
        secrets=tuple(secrets),
    )


def shared_registry_problem(target: ServedEnvironment) -> str | None:
    """Why a server away from the project folder could not read the registry, or None."""
    uri = target.tracking_uri
    if uri is None or uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        shown = uri or "unset (the project's .conveyor/mlflow.db)"
        return (
            f"registry.tracking_uri is {shown}: a server in a container or on another host cannot read "
            "the project's embedded MLflow store; set registry.tracking_uri to an MLflow server (http://…)"
        )
    return None
