"""Which store a project uses: the local folder, or PostgreSQL when ``state.uri_env`` is set.

``state.uri_env`` (default ``CONVEYOR_STATE_URI``) names the environment variable
holding ``postgresql://user:password@host:port/database``. The URI is a secret:
it is read from the environment only (never from ``conveyor.yaml``) and never
printed — a store is named by :attr:`StateStore.location`, without the password.
When the variable is unset or empty, the state stays in the project's local folder.

One store object per URI per process: its connection pool is shared by every
command of the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.config import env_flag
from conveyor.project import Project
from conveyor.state._local import LocalStore
from conveyor.state._types import StateStore

if TYPE_CHECKING:
    from conveyor.state._postgres import PostgresStore

_SHARED: dict[tuple[str, float], PostgresStore] = {}


@dataclass(frozen=True)
class StoreChoice:
    """Which store a project uses and why (for ``conveyor config check``)."""

    kind: str  # "local" or "postgresql"
    location: str  # a folder, or postgresql://user@host:port/db (never the password)
    source: str  # what chose it: "state.uri_env=CONVEYOR_STATE_URI", or why it is local


def _uri(project: Project) -> tuple[str | None, str]:
    var = project.settings.state.uri_env
    if not var:
        return None, "state.uri_env is empty"
    value = (env_flag(var) or "").strip()
    if not value:
        return None, f"{var} is not set"
    return value, f"set by {var}, named in state.uri_env"


def shared_store(uri: str, timeout: float = 30.0) -> PostgresStore:
    """The process's one :class:`PostgresStore` for ``uri`` (statements bounded by ``timeout`` s)."""
    store = _SHARED.get((uri, timeout))
    if store is None:
        from conveyor.state._postgres import PostgresStore  # SQLAlchemy only when a team store is used

        store = _SHARED[(uri, timeout)] = PostgresStore(uri, timeout=timeout)
    return store


def open_store(project: Project) -> StateStore:
    """The project's state store (see the module docstring)."""
    uri, _why = _uri(project)
    if uri is None:
        return local_store(project.state_dir)
    return shared_store(uri, project.settings.state.timeout_seconds)


def local_store(folder: Path) -> LocalStore:
    return LocalStore(folder)


def store_choice(project: Project, *, connect: bool = False) -> StoreChoice:
    """Which store ``project`` uses; with ``connect``, a StateStoreError when it cannot be used."""
    uri, why = _uri(project)
    if uri is None:
        return StoreChoice("local", str(project.path(project.settings.project.state_dir)), why)
    store = shared_store(uri, project.settings.state.timeout_seconds)
    if connect:
        store.check()
    return StoreChoice(store.kind, store.location, why)
