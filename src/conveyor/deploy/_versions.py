"""The registry as deployment sees it: the candidate version and the aliases that follow deploys.

A thin bridge over :mod:`conveyor.registry`, imported lazily (it imports
MLflow, which costs seconds). The newest registered version is the candidate.
"""

from __future__ import annotations

from conveyor.errors import UsageError
from conveyor.project import Project


def alias_version(project: Project, alias: str) -> str | None:
    """The version at ``alias``, or None when the alias is unset."""
    from conveyor.registry import get_version_by_alias

    found = get_version_by_alias(project, alias)
    return None if found is None else found.version


def set_alias(project: Project, alias: str, version: str) -> None:
    from conveyor.registry import set_alias as registry_set_alias

    registry_set_alias(project, alias, version)


def latest_version(project: Project) -> str:
    """The newest registered version (the candidate of a deploy)."""
    from conveyor.registry import list_versions

    versions = list_versions(project)
    if not versions:
        raise UsageError(
            f"no registered version of model {project.model_name!r}: run `conveyor register` first"
        )
    return versions[0].version


def check_version(project: Project, version: str) -> str:
    """``version`` when the registry has it; a UsageError naming the model otherwise."""
    from conveyor.registry import get_version

    return get_version(project, version).version
