"""Where an environment's request log lives: the one answer serving, deploy and monitoring share.

A local folder (the default, one laptop) or an S3 prefix (``serving.request_log.uri``, a team):
:func:`request_log_location` gives either; every reader and writer of :mod:`._log` takes both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conveyor.config import s3_endpoint_url
from conveyor.project import Project


@dataclass(frozen=True)
class S3Location:
    """An environment's request log in S3: ``uri`` is ``s3://bucket/prefix/<env>``.

    ``endpoint_url`` is the S3 endpoint when it is not AWS (from ``AWS_ENDPOINT_URL_S3`` or
    ``AWS_ENDPOINT_URL``); the keys are read from the environment by the S3 clients themselves.
    """

    uri: str
    endpoint_url: str | None = None

    @property
    def bucket(self) -> str:
        return self.uri.removeprefix("s3://").split("/", 1)[0]

    @property
    def key(self) -> str:
        """The prefix inside the bucket (no leading or trailing slash)."""
        parts = self.uri.removeprefix("s3://").split("/", 1)
        return parts[1].strip("/") if len(parts) > 1 else ""

    def child(self, name: str) -> S3Location:
        return S3Location(f"{self.uri.rstrip('/')}/{name.strip('/')}", self.endpoint_url)

    def __str__(self) -> str:
        return self.uri


RequestLogLocation = Path | S3Location


def request_log_dir(project: Project, env: str) -> Path:
    """The folder the server of ``env`` writes its request log to (``serving.request_log.dir`` wins)."""
    configured = project.settings.serving.request_log.dir
    if configured:
        return project.path(configured)
    return project.state_dir / "requests" / env


def request_log_location(project: Project, env: str) -> RequestLogLocation:
    """Where ``env``'s request log lives: ``<serving.request_log.uri>/<env>`` in S3, else the folder
    of :func:`request_log_dir`."""
    uri = project.settings.serving.request_log.uri
    if uri:
        return S3Location(f"{uri}/{env}", s3_endpoint_url())
    return request_log_dir(project, env)


def request_log_locations(project: Project, env: str) -> list[RequestLogLocation]:
    """Every place the replicas of ``env`` write to: the one S3 prefix they all share (parts named by
    replica), else ``deploy.environments.<env>.request_logs`` (replicas on hosts with their own
    folders), else :func:`request_log_dir`, where replicas sharing the project's folder write parts."""
    if project.settings.serving.request_log.uri:
        return [request_log_location(project, env)]
    settings = project.settings.deploy.environments.get(env)
    if settings is not None and settings.request_logs:
        return [project.path(p) for p in settings.request_logs]
    return [request_log_dir(project, env)]
