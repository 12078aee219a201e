"""What the tests share for ports and server processes on 127.0.0.1 (``from support import ...``).

Ports come from the one owner in src, :func:`conveyor.deploy.free_port` (the supervisor uses
it for its side servers, the demo for its environments). Every wait here is bounded, and a
process is stopped with SIGTERM, then SIGKILL, so no server outlives its test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from conveyor.deploy import free_port

__all__ = [
    "K",
    "finish_or_kill",
    "free_environment_ports",
    "free_port",
    "shop_interactions",
    "stop_process",
    "wait_ready",
    "wait_until",
    "write_registered_shop",
]

USERS, ITEMS = 300, 60
K = 5


def free_environment_ports(root: Path) -> None:
    """Give every environment in ``root/conveyor.yaml`` a port that is free now."""
    path = root / "conveyor.yaml"
    raw = yaml.safe_load(path.read_text())
    for env in raw["deploy"]["environments"].values():
        env["port"] = free_port()
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def wait_ready(url: str, process: subprocess.Popen[str], seconds: float = 180, path: str = "/ready") -> None:
    """Wait until the server ``process`` answers ``url + path`` with 200; fail if it exits (bounded:
    a start imports MLflow and loads from the registry, which took over 60 s at a load average of 30)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"server exited {process.returncode}: {stderr}")
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server not ready in {seconds:g} s")


def wait_until(condition: Callable[[], object], what: str, seconds: float, poll: float = 0.1) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)


def finish_or_kill(process: subprocess.Popen[str], seconds: float, what: str) -> tuple[str, str]:
    """The output of ``process`` (started in a session of its own) once it exits; after ``seconds``
    (or when the test fails while it runs) its whole process group is killed."""
    try:
        return process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{what} did not finish in {seconds:g} s") from None
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def stop_process(process: subprocess.Popen[str], seconds: float = 20) -> None:
    """SIGTERM, then SIGKILL after ``seconds``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def shop_interactions() -> Any:
    """Users with one of three tastes (item ranges), 15 interactions each."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    rows = []
    for user in range(USERS):
        taste = user % 3
        for item in rng.integers(taste * 20, taste * 20 + 20, 15):
            rows.append((user, int(item), 1_700_000_000 + len(rows), "view"))
    return pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp", "event"], orient="row")


def write_registered_shop(root: Path, config: str = "project: {name: shop}\nmodel: {k: 5}\n") -> None:
    """A recommender project in ``root`` with registered versions 1, 2 (healthy ALS), 3 (fails half
    its calls) and 4 (answers its first 50 calls, then fails half: it passes a smoke test)."""
    import mlflow

    from conveyor.deploy._drill import FaultyRecommender  # a test double, not public API
    from conveyor.models import ImplicitRecommender
    from conveyor.project import Project
    from conveyor.registry import Lineage, ensure_experiment, register_version

    (root / "conveyor.yaml").write_text(config)
    data = shop_interactions()
    (root / "data" / "raw").mkdir(parents=True)
    data.write_parquet(root / "data" / "raw" / "interactions.parquet")
    project = Project.load(root)
    experiment = ensure_experiment(project)
    models: list[Any] = [
        ImplicitRecommender(params={"factors": 8, "iterations": 5}, seed=1).fit(data),
        ImplicitRecommender(params={"factors": 8, "iterations": 5}, seed=2).fit(data),
    ]
    models.append(FaultyRecommender(models[0], error_rate=0.5, seed=3))
    models.append(FaultyRecommender(models[0], error_rate=0.5, healthy_calls=50, seed=4))
    for i, model in enumerate(models):
        model_dir = root / "models" / str(i)
        model.save(model_dir)
        with mlflow.start_run(experiment_id=experiment) as run:
            pass
        register_version(project, run.info.run_id, model_dir, lineage=Lineage(model_type="als"))
