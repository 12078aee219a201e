"""The pipeline against a team's shared stores vs the embedded ones: wall time and per-stage overhead.

One recommender project (``conveyor init --template recommender``, the sample data) is copied
twice and each copy runs ``conveyor run --json`` to production once, in a fresh process:

* **embedded** — MLflow on SQLite with artifacts under ``.conveyor/``, the request log in a folder;
* **shared** — ``registry.tracking_uri`` naming a real ``mlflow server`` whose runs and registry
  live in PostgreSQL and whose artifacts go to S3 (moto's server on loopback) through the
  server's proxy, and ``serving.request_log.uri`` in that S3.

Each stage's seconds come from the run's own report (a stage is a ``conveyor`` child process,
imports included); the overhead is shared minus embedded. One run each: the wall times carry
the load of the moment, printed before and after; the CPU time of the run's own processes
(the ``conveyor`` stages, not the servers they start nor the MLflow server) is the figure the
load disturbs least.

    .venv/bin/python -m benchmarks.shared_stores    # or: python -m benchmarks --record --only shared_stores
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks._env import environment_header, load_line
from conveyor.deploy import free_port

ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1"}


def _conveyor(*args: str, env: dict[str, str], timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["conveyor", *args], env={**os.environ, **ENV, **env}, capture_output=True, text=True, timeout=timeout
    )


def _configure(root: Path, shared: tuple[str, dict[str, str]] | None) -> None:
    path = root / "conveyor.yaml"
    raw = yaml.safe_load(path.read_text())
    for environment in raw["deploy"]["environments"].values():
        environment["port"] = free_port()
    if shared is not None:
        raw["registry"] = {"tracking_uri": shared[0]}
        raw.setdefault("serving", {})["request_log"] = {"uri": "s3://requests/bench"}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def _run(template: Path, folder: Path, shared: tuple[str, dict[str, str]] | None) -> dict[str, Any]:
    root = folder / ("shared" if shared else "embedded")
    shutil.copytree(template, root)
    _configure(root, shared)
    env = shared[1] if shared else {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        done = _conveyor("--project", str(root), "run", "--json", env=env)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(f"conveyor run ({root.name}) exited {done.returncode}: {done.stdout[-2000:]}")
        report = json.loads(done.stdout)
    finally:
        from conveyor.deploy import EnvironmentProcess
        from conveyor.project import Project

        project = Project.load(root)
        for environment in project.settings.deploy.environments:
            EnvironmentProcess(project, environment).stop()
    return {"wall_s": wall, "cpu_s": cpu, "stages": {s["stage"]: s["seconds"] for s in report["stages"]}}


def run() -> dict[str, Any]:
    from benchmarks._shared_services import shared_stores

    with tempfile.TemporaryDirectory(prefix="bench-shared-") as tmp:
        folder = Path(tmp)
        template = folder / "template"
        made = _conveyor("init", str(template), "--template", "recommender", "--json", env={})
        if made.returncode != 0:
            raise RuntimeError(f"conveyor init failed: {made.stderr.strip()[-500:]}")
        embedded = _run(template, folder, None)
        with shared_stores() as stores:
            shared = _run(template, folder, stores)
    return {"embedded": embedded, "shared": shared}


def table(result: dict[str, Any]) -> str:
    embedded, shared = result["embedded"], result["shared"]
    rows = ["| stage | embedded (SQLite + folder) | shared (MLflow server on PostgreSQL + S3) | overhead |",
            "|---|---:|---:|---:|"]  # fmt: skip
    for stage, seconds in embedded["stages"].items():
        other = shared["stages"].get(stage, float("nan"))
        rows.append(f"| {stage} | {seconds:.1f} s | {other:.1f} s | {other - seconds:+.1f} s |")
    wall = shared["wall_s"] - embedded["wall_s"]
    cpu = shared["cpu_s"] - embedded["cpu_s"]
    rows.append(
        f"| CPU time of the run's own processes (user + sys) | {embedded['cpu_s']:.1f} s "
        f"| {shared['cpu_s']:.1f} s | {cpu:+.1f} s |"
    )
    rows.append(
        f"| **`conveyor run`, wall time** | {embedded['wall_s']:.1f} s | {shared['wall_s']:.1f} s "
        f"| {wall:+.1f} s |"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0]).parse_args(argv)
    print(environment_header("shared_stores", command="python -m benchmarks.shared_stores"))
    result = run()
    print(load_line("after"))
    print()
    print("one `conveyor run` to production each, recommender template sample (2,000 events)")
    print()
    print(table(result))
    print(json.dumps(result))  # one line: the recorder leaves it out of docs/benchmarks.md
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
