"""Where an environment's request log lives: the one answer serving, deploy and monitoring share."""

from __future__ import annotations

from pathlib import Path

from conveyor.project import Project


def request_log_dir(project: Project, env: str) -> Path:
    """The folder the server of ``env`` writes its request log to (``serving.request_log.dir`` wins)."""
    configured = project.settings.serving.request_log.dir
    if configured:
        return project.path(configured)
    return project.state_dir / "requests" / env


def request_log_dirs(project: Project, env: str) -> list[Path]:
    """Every folder the replicas of ``env`` write to (``deploy.environments.<env>.request_logs``;
    default: :func:`request_log_dir`, where replicas sharing the project's folder write part files)."""
    settings = project.settings.deploy.environments.get(env)
    if settings is not None and settings.request_logs:
        return [project.path(p) for p in settings.request_logs]
    return [request_log_dir(project, env)]
