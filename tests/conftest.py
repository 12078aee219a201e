"""Shared fixtures: run the CLI in-process and make throw-away projects."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli import main
from conveyor.telemetry import TELEMETRY_OPT_OUT
from services import (
    S3,
    MlflowServer,
    Postgres,
    postgres_binaries,
    running_mlflow_server,
    running_postgres,
    running_s3,
)

os.environ.update(TELEMETRY_OPT_OUT)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one JSON line on stdout, got {len(lines)}: {self.stdout!r}"
        return json.loads(lines[0])


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Invoke `conveyor ARGS...` in this process; returns exit code and output."""

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[str], Path]:
    """Write a conveyor.yaml with the given text into a fresh folder."""

    def write(text: str = "", name: str = "proj") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        (root / "conveyor.yaml").write_text(text)
        return root

    return write


# -- a team's shared stores: real PostgreSQL, S3 (moto_server) and `mlflow server` (tests/services.py) --
@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL cluster per test process; skipped with the reason when PostgreSQL is missing."""
    if postgres_binaries() is None:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql; `make test-tools` installs it)")
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    with running_s3() as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_server(postgres: Postgres, s3: S3) -> Iterator[MlflowServer]:
    """A real `mlflow server`: runs and registry in PostgreSQL, artifacts in S3 (bucket ``mlflow``)."""
    backend = postgres.create_database("mlflow").replace("postgresql://", "postgresql+psycopg://", 1)
    destination = s3.create_bucket("mlflow") + "/artifacts"
    with running_mlflow_server(backend, destination, s3.env) as server:
        yield server


@pytest.fixture(scope="session")
def demo_summary(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The quick recommender demo, run once per session (per xdist worker: tests that use it are
    in the ``demo`` xdist group), shared by the demo's own test and the operations page's test."""
    from rich.console import Console

    from conveyor.config import Template
    from conveyor.demo import Demo

    workdir = tmp_path_factory.mktemp("demo")
    return Demo(workdir, Template.RECOMMENDER, "quick", Console(stderr=True), keep=False).run()
