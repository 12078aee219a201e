"""What the Spark tests share: the marks, the test session's settings, a project's spark section,
and a served project's server (to look for a JVM in it)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psutil
import pytest

from conveyor.config import SparkSection
from conveyor.telemetry import TELEMETRY_OPT_OUT
from support import stop_process, wait_ready

# marked `spark` (`pytest -m spark` runs them alone) and in one xdist group, so that one worker —
# one JVM — runs every Spark test under --dist loadgroup
SPARK_TESTS = [pytest.mark.spark, pytest.mark.xdist_group("spark")]
TEST_SPARK = SparkSection(
    master="local[2]",
    conf={
        "spark.sql.shuffle.partitions": 2,
        "spark.default.parallelism": 2,
        "spark.ui.enabled": False,
        "spark.driver.memory": "1g",
        "spark.sql.session.timeZone": "UTC",
    },
)
SPARK_YAML = """\
spark:
  master: local[2]
  conf:
    spark.sql.shuffle.partitions: 2
    spark.default.parallelism: 2
    spark.ui.enabled: false
    spark.driver.memory: 1g
"""


def jvm_in(process: psutil.Process) -> list[str]:
    """Java processes among ``process``'s children, and whether libjvm is mapped into it."""
    found = [p.name() for p in process.children(recursive=True) if "java" in p.name()]
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    return found + (["libjvm in the server process"] if "libjvm" in maps else [])


def pyspark_imported_by_serving() -> bool:
    """Whether importing the server's package (all a replica loads a model with) imports PySpark."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, conveyor.serving; print('pyspark' in sys.modules)"],
        capture_output=True,
        text=True,
        env={**os.environ, **TELEMETRY_OPT_OUT},
        check=True,
    )
    return done.stdout.strip() == "True"


@contextlib.contextmanager
def serving(root: Path, env: str = "production") -> Iterator[tuple[str, psutil.Process]]:
    """``conveyor serve --env ENV`` of the project at ``root`` in a child process: (url, process)."""
    from conveyor.project import Project

    port = Project.load(root).settings.deploy.environments[env].port
    server = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "--project", str(root), "serve", "--env", env],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **TELEMETRY_OPT_OUT},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, server)
        yield url, psutil.Process(server.pid)
    finally:
        stop_process(server)


def trained_into_production(cli: Callable[..., Any], root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``train`` → ``evaluate`` (its determinism gate passes) → ``register`` → alias production, on a
    project with ``model.engine: spark``; (the best run, the registered version)."""
    import mlflow

    from conveyor.project import Project
    from conveyor.registry import set_alias

    trained = cli("--project", root, "train", "--json")
    assert trained.exit_code == 0, trained.stderr
    best: dict[str, Any] = trained.json()["best"]
    evaluated = cli("--project", root, "evaluate", "--json")
    assert evaluated.exit_code == 0, evaluated.stdout
    assert {g["name"]: g["verdict"] for g in evaluated.json()["gates"]}["determinism"] == "pass"
    registered = cli("--project", root, "register", "--json")
    assert registered.exit_code == 0, registered.stderr
    version: dict[str, Any] = registered.json()
    project = Project.load(root)
    set_alias(project, "production", version["version"])
    mlflow.set_tracking_uri(project.tracking_uri)
    assert mlflow.get_run(best["run_id"]).data.params["engine"] == "spark"
    return best, version


def small_log(n: int = 600, seed: int = 0) -> pl.DataFrame:
    """A small interaction log over October 2026: 60 users, each in one of 3 taste groups of 10 items."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 60, n)
    return pl.DataFrame(
        {
            "user_id": users,
            "item_id": (users % 3) * 10 + rng.integers(0, 10, n),
            "timestamp": pl.datetime_range(
                pl.datetime(2026, 10, 1), pl.datetime(2026, 10, 28), "1h", eager=True
            ).sample(n, with_replacement=True, seed=seed),
            "event": rng.choice(["view", "purchase"], n),
        }
    )
