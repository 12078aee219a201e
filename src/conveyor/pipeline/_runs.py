"""The local index of training runs (SQLite under the state folder).

MLflow is the record of every run; this index is what lets ``train`` answer
"nothing changed, reusing run X" in well under a second without importing
MLflow (2–4 s). Each run also keeps a folder ``.conveyor/runs/<run_id>/``
with the model files, the baseline, the held-out set, the schema and the
reference profile, so that ``evaluate`` and ``register`` need no download.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import OperationError, UsageError

if TYPE_CHECKING:
    from conveyor.registry import Lineage
from conveyor.project import Project

INDEX_FILE = "runs.db"
RUNS_DIR = "runs"
LATEST = "latest"
# files of a run folder beside model/, baseline/ and test/
PROFILE_FILE = "profile.json"
LIVE_PROFILE_FILE = "profile-live.json"
SCHEMA_FILE = "schema.yaml"
INPUT_EXAMPLE_FILE = "input-example.json"  # a few model inputs (pandas "split" JSON), for the signature


@dataclass(frozen=True)
class RunRecord:
    """One training run as the local index knows it."""

    run_id: str
    key: str  # hash of data fingerprint + code version + parameters
    model_type: str
    params: dict[str, Any]
    data_path: str
    data_fingerprint: str
    dvc_tracked: bool
    git_commit: str
    conveyor_version: str
    config_hash: str
    primary_metric: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    created_at: float = field(default_factory=time.time)
    experiment_id: str = ""
    parent_run_id: str = ""
    evaluation: dict[str, Any] | None = None  # {"passed": bool, "gates": [...], "metrics": {...}}
    registered_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lineage(self) -> Lineage:
        """The registry lineage of this run (data, code, configuration, parameters)."""
        from conveyor.registry import Lineage  # no MLflow: the reuse path imports this module

        return Lineage(
            model_type=self.model_type,
            data_path=self.data_path,
            data_fingerprint=self.data_fingerprint,
            dvc_tracked=self.dvc_tracked,
            git_commit=self.git_commit,
            conveyor_version=self.conveyor_version,
            config_hash=self.config_hash,
            params=self.params,
        )

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunRecord:
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class RunOutcome:
    """A run ``train`` trained or reused, and how long that took."""

    record: RunRecord
    reused: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "run_id": r.run_id,
            "reused": self.reused,
            "seconds": round(self.seconds, 3),
            "model_type": r.model_type,
            "params": r.params,
            "primary_metric": r.primary_metric,
            "metrics": r.metrics,
            "baseline_metrics": r.baseline_metrics,
            "data_fingerprint": r.data_fingerprint,
            "dvc_tracked": r.dvc_tracked,
            "git_commit": r.git_commit,
        }


def runs_root(project: Project) -> Path:
    return project.state_dir / RUNS_DIR


def run_dir(project: Project, run_id: str) -> Path:
    return runs_root(project) / run_id


class RunIndex:
    """Runs by id and by key, and which one is the latest (the one evaluate/register act on)."""

    def __init__(self, project: Project) -> None:
        self.project = project

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        path = self.project.state_dir / INDEX_FILE
        try:
            con = sqlite3.connect(path, timeout=30.0)
        except sqlite3.Error as exc:
            raise OperationError(f"{path}: cannot open the run index: {exc}") from exc
        try:
            con.execute(
                "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, key TEXT NOT NULL,"
                " created REAL NOT NULL, record TEXT NOT NULL)"
            )
            con.execute("CREATE INDEX IF NOT EXISTS runs_key ON runs (key)")
            con.execute("CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            with con:
                yield con
        except sqlite3.Error as exc:
            raise OperationError(f"{path}: run index failed: {exc}") from exc
        finally:
            con.close()

    def put(self, record: RunRecord) -> None:
        with self._db() as con:
            con.execute(
                "INSERT OR REPLACE INTO runs (run_id, key, created, record) VALUES (?, ?, ?, ?)",
                (record.run_id, record.key, record.created_at, json.dumps(record.to_dict(), default=str)),
            )

    def get(self, run_id: str) -> RunRecord | None:
        with self._db() as con:
            row = con.execute("SELECT record FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return RunRecord.from_dict(json.loads(row[0])) if row else None

    def find_reusable(self, key: str) -> RunRecord | None:
        """The newest run with ``key`` whose files are still on disk."""
        with self._db() as con:
            rows = con.execute(
                "SELECT record FROM runs WHERE key = ? ORDER BY created DESC", (key,)
            ).fetchall()
        for (text,) in rows:
            record = RunRecord.from_dict(json.loads(text))
            if (run_dir(self.project, record.run_id) / "model").is_dir():
                return record
        return None

    def set_latest(self, run_id: str) -> None:
        with self._db() as con:
            con.execute("INSERT OR REPLACE INTO state (name, value) VALUES (?, ?)", (LATEST, run_id))

    def latest_id(self) -> str | None:
        """The latest run's id, or None (no index yet, or no run); never creates the index."""
        if not (self.project.state_dir / INDEX_FILE).is_file():
            return None
        with self._db() as con:
            row = con.execute("SELECT value FROM state WHERE name = ?", (LATEST,)).fetchone()
        return str(row[0]) if row else None

    def latest(self) -> RunRecord:
        """The run ``evaluate`` and ``register`` act on; UsageError when there is none."""
        with self._db() as con:
            row = con.execute("SELECT value FROM state WHERE name = ?", (LATEST,)).fetchone()
        record = self.get(row[0]) if row else None
        if record is None:
            raise UsageError("no training run in this project yet; run `conveyor train` first")
        return record

    def update(self, run_id: str, **changes: Any) -> RunRecord:
        record = self.get(run_id)
        if record is None:
            raise UsageError(f"no run {run_id} in the local run index")
        updated = replace(record, **changes)
        self.put(updated)
        return updated
