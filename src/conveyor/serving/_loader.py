"""Where served models come from: a version id in, a loaded :class:`Model` out.

The server only sees :class:`ModelLoader`; ``conveyor serve`` plugs in
:class:`RegistryLoader` (registry alias → version → checksum-verified artifact), the
tests and benchmarks plug in :class:`StaticLoader` (models already in memory).
Loading runs in a worker thread beside the versions that serve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from conveyor.errors import InputError, UsageError
from conveyor.models import Model
from conveyor.project import Project


class VersionNotFound(InputError):
    """The registry has no such model version (or no version at that alias)."""


class ModelLoader(Protocol):
    """Turns a version id into a loaded model."""

    def initial_versions(self) -> list[str]:
        """The versions to serve at start (may be empty)."""
        ...

    def load(self, version: str) -> Model:
        """The model of ``version``; raises VersionNotFound or IntegrityError."""
        ...


class StaticLoader:
    """Models given in memory (or as factories), keyed by version id."""

    def __init__(
        self, models: Mapping[str, Model | Callable[[], Model]], initial: Sequence[str] = ()
    ) -> None:
        self.models = models
        self.initial = initial

    def initial_versions(self) -> list[str]:
        return list(self.initial)

    def load(self, version: str) -> Model:
        try:
            entry = self.models[version]
        except KeyError:
            raise VersionNotFound(f"model version {version} not found", version=version) from None
        return entry if isinstance(entry, Model) else entry()


class RegistryLoader:
    """Versions from the project's model registry, checksum verified before loading.

    ``alias`` names the version served at start (the environment's name); ``pinned``
    overrides it with an explicit version number.
    """

    def __init__(self, project: Project, alias: str, pinned: str | None = None) -> None:
        self.project = project
        self.alias = alias
        self.pinned = pinned

    def initial_versions(self) -> list[str]:
        if self.pinned is not None:
            return [self.pinned]
        # imported here: MLflow costs seconds at import and tests serve without it
        from conveyor.registry import get_version_by_alias

        found = get_version_by_alias(self.project, self.alias)
        return [] if found is None else [str(found.version)]

    def load(self, version: str) -> Model:
        from conveyor.registry import get_version, load_verified

        try:
            found = get_version(self.project, version)
        except UsageError as exc:
            raise VersionNotFound(str(exc), version=version) from exc
        return load_verified(found)
