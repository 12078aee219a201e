"""The store fixture: every conformance test runs on the local folder and on a real PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conveyor.state import LocalStore, StateStore

SERVICES = [pytest.mark.services, pytest.mark.xdist_group("services")]


def open_spec(spec: str) -> StateStore:
    """The store a spec names: a ``postgresql://`` URI, else a folder (also used by child processes)."""
    if spec.startswith("postgresql"):
        from conveyor.state import PostgresStore

        return PostgresStore(spec)
    return LocalStore(Path(spec))


@pytest.fixture(params=["local", pytest.param("postgresql", marks=SERVICES)])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store's spec: a folder, or a new database on the session's PostgreSQL."""
    if request.param == "local":
        return str(tmp_path / "state")
    postgres = request.getfixturevalue("postgres")
    return str(postgres.create_database(f"state_{uuid.uuid4().hex[:12]}"))


@pytest.fixture
def store(store_spec: str) -> StateStore:
    return open_spec(store_spec)
