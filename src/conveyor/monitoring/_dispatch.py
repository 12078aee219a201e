"""Start the retraining workflow on GitHub Actions (``workflow_dispatch``).

``POST {api_url}/repos/{owner}/{repo}/actions/workflows/{file}/dispatches``
with the token of ``monitoring.retrain.github.token_env`` as a Bearer token
(https://docs.github.com/en/rest/actions/workflows#create-a-workflow-dispatch-event).
GitHub answers 204 No Content when the run is queued. ``api_url`` is
configurable (GitHub Enterprise Server, or a local receiver in tests).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from conveyor.config import secret_from_env
from conveyor.errors import ConfigError, ServiceError
from conveyor.monitoring._delivery import post_json
from conveyor.project import Project

GITHUB_API_VERSION = "2022-11-28"
REASON_INPUT = "reason"
# Every input the monitor sends; the dispatched workflow must declare each one under
# ``on.workflow_dispatch.inputs`` (GitHub answers 422 to an undeclared input).
# ``conveyor workflows check`` compares the generated workflow with this.
RETRAIN_INPUTS: tuple[str, ...] = (REASON_INPUT,)
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class DispatchResult:
    """A queued workflow run: where it was asked for (no token, no host secrets)."""

    repository: str
    workflow: str
    ref: str
    inputs: dict[str, str]
    http_status: int
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dispatch_path(repository: str, workflow: str) -> str:
    """The REST path of the dispatch endpoint for ``repository`` and ``workflow``."""
    owner, name = repository.split("/", 1)
    return f"/repos/{quote(owner)}/{quote(name)}/actions/workflows/{quote(workflow, safe='')}/dispatches"


def dispatch_workflow(project: Project, inputs: dict[str, str] | None = None) -> DispatchResult:
    """Ask GitHub to run ``monitoring.retrain.github.workflow`` on ``ref`` with ``inputs``."""
    github = project.settings.monitoring.retrain.github
    file = str(project.config_file)
    repository = github.repository
    if not repository:
        raise ConfigError(file, "monitoring.retrain.github.repository", "required to dispatch (owner/name)")
    if not _REPOSITORY.match(repository):
        raise ConfigError(
            file, "monitoring.retrain.github.repository", f"expected owner/name (got {repository!r})"
        )
    token = secret_from_env(github.token_env, purpose="GitHub token to dispatch the retraining workflow")
    url = github.api_url.rstrip("/") + dispatch_path(repository, github.workflow)
    clean_inputs = {str(k): str(v) for k, v in (inputs or {}).items()}
    body: dict[str, Any] = {"ref": github.ref, "inputs": clean_inputs}
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": GITHUB_API_VERSION,
        "User-Agent": "conveyor-monitor",
    }
    alerts = project.settings.alerts
    outcome = post_json(
        url, body, retries=alerts.retries, timeout=alerts.timeout_seconds, headers=headers, secrets=[token]
    )
    if not outcome.ok or outcome.status is None:
        raise ServiceError(
            f"GitHub workflow dispatch of {github.workflow} in {repository} failed: {outcome.error}"
            f" after {outcome.attempts} attempt(s)",
            repository=repository,
            workflow=github.workflow,
            http_status=outcome.status,
        )
    return DispatchResult(
        repository, github.workflow, github.ref, clean_inputs, outcome.status, outcome.attempts
    )
