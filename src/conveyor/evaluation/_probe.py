"""Behaviour checks on a fitted model: determinism, single-request latency, artifact size.

Determinism means the same bytes in give the same bytes out: twice in this
process, after a save/load round trip, and in a second Python process that
loads the saved files (``python -m conveyor.evaluation._probe MODEL PROBE``
prints the digest of its outputs).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from conveyor.errors import InputError
from conveyor.models import Classifier, Model, Recommender, load_model
from conveyor.telemetry import TELEMETRY_OPT_OUT

LATENCY_REQUESTS = 200
LATENCY_WARMUP = 10
CHILD_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Probe:
    """A fixed input to replay: user ids (recommender) or feature rows (classifier)."""

    user_ids: list[Any] | None = None
    rows: pl.DataFrame | None = None
    k: int = 10

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "probe.json").write_text(json.dumps({"user_ids": self.user_ids, "k": self.k}))
        if self.rows is not None:
            self.rows.write_parquet(directory / "rows.parquet")

    @classmethod
    def load(cls, directory: Path) -> Probe:
        try:
            meta = json.loads((directory / "probe.json").read_text())
            rows_file = directory / "rows.parquet"
            rows = pl.read_parquet(rows_file) if rows_file.is_file() else None
        except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
            raise InputError(f"{directory}: unreadable probe ({exc})", path=str(directory)) from exc
        return cls(user_ids=meta.get("user_ids"), rows=rows, k=int(meta.get("k", 10)))

    def single_requests(self) -> list[Any]:
        if self.user_ids is not None:
            return list(self.user_ids)
        if self.rows is None:
            return []
        return [self.rows.slice(i, 1) for i in range(self.rows.height)]


def _outputs(model: Model, probe: Probe) -> bytes:
    if isinstance(model, Recommender) and probe.user_ids is not None:
        recs = model.recommend(probe.user_ids, probe.k, exclude_seen=True)
        payload = [[r.user_id, r.items, r.scores, r.fallback] for r in recs]
        return json.dumps(payload).encode()
    if isinstance(model, Classifier) and probe.rows is not None:
        return np.ascontiguousarray(model.predict_proba(probe.rows), dtype=np.float64).tobytes()
    raise InputError(f"the probe does not fit a {model.kind}")


def output_digest(model: Model, probe: Probe) -> str:
    """sha256 of the model's outputs on the probe (exact bytes: floats are not rounded)."""
    return hashlib.sha256(_outputs(model, probe)).hexdigest()


@dataclass(frozen=True)
class DeterminismReport:
    repeat: bool
    round_trip: bool
    process: bool | None  # None when the second process could not run
    problem: str = ""

    @property
    def passed(self) -> bool:
        return self.repeat and self.round_trip and self.process is not False

    def to_dict(self) -> dict[str, Any]:
        return {
            "repeat": self.repeat,
            "round_trip": self.round_trip,
            "second_process": self.process,
            "problem": self.problem,
        }


def check_determinism(model: Model, probe: Probe, *, second_process: bool = True) -> DeterminismReport:
    """Same outputs twice, after save/load, and (optionally) in a fresh process."""
    first = output_digest(model, probe)
    repeat = output_digest(model, probe) == first
    with tempfile.TemporaryDirectory(prefix="conveyor-determinism-") as tmp:
        saved = Path(tmp) / "model"
        model.save(saved)
        round_trip = output_digest(load_model(saved), probe) == first
        process: bool | None = None
        problem = ""
        if second_process:
            probe_dir = Path(tmp) / "probe"
            probe.save(probe_dir)
            env = {**os.environ, **TELEMETRY_OPT_OUT}
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "conveyor.evaluation._probe", str(saved), str(probe_dir)],
                    capture_output=True,
                    text=True,
                    timeout=CHILD_TIMEOUT_S,
                    env=env,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                problem = f"second process did not run: {type(exc).__name__}"
            else:
                if done.returncode != 0:
                    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                    problem = f"second process failed: {tail}"
                else:
                    process = done.stdout.strip() == first
    return DeterminismReport(repeat=repeat, round_trip=round_trip, process=process, problem=problem)


def latency_p95_ms(model: Model, probe: Probe, *, requests: int = LATENCY_REQUESTS) -> float:
    """p95 of single-request inference time (one user, or one row), after a short warm-up."""
    singles = probe.single_requests()
    if not singles:
        raise InputError("no probe inputs to time")

    def call(one: Any) -> None:
        if isinstance(model, Recommender):
            model.recommend([one], probe.k)
        elif isinstance(model, Classifier):
            model.predict_proba(one)

    for i in range(LATENCY_WARMUP):
        call(singles[i % len(singles)])
    times = np.empty(requests)
    for i in range(requests):
        start = time.perf_counter()
        call(singles[i % len(singles)])
        times[i] = time.perf_counter() - start
    return float(np.percentile(times, 95) * 1000.0)


def artifact_bytes(directory: Path) -> int:
    """Total size of the files of a saved model."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m conveyor.evaluation._probe MODEL_DIR PROBE_DIR\n")
        return 2
    model = load_model(Path(argv[0]))
    sys.stdout.write(output_digest(model, Probe.load(Path(argv[1]))) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
