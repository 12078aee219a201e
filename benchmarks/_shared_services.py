"""PostgreSQL, moto's S3 and ``mlflow server`` for the benchmarks: the tests' own start-up.

The services start exactly as the tests start them — :mod:`tests/services.py <services>` is the
one owner of their flags (a throw-away cluster with fsync off, moto on loopback, the tracking
server with ``--artifacts-destination s3://…``) and of their bounded waits and stops. It is
imported by the name pytest gives it (``from services import ...``, with ``tests/`` on the path),
so :func:`services` puts ``tests/`` on ``sys.path`` first.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from benchmarks._env import ROOT


def services() -> ModuleType:
    """The tests' service module (``tests/services.py``)."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import services as module

    return module


@contextmanager
def shared_stores() -> Iterator[tuple[str, dict[str, str]]]:
    """(tracking URL, client environment): PostgreSQL + S3 + ``mlflow server`` until the block ends."""
    found = services()
    with found.running_postgres() as postgres, found.running_s3() as s3:
        backend = postgres.create_database("mlflow").replace("postgresql://", "postgresql+psycopg://", 1)
        destination = s3.create_bucket("mlflow") + "/artifacts"
        s3.create_bucket("requests")
        with found.running_mlflow_server(backend, destination, s3.env) as server:
            yield server.url, dict(s3.env)
