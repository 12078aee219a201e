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
