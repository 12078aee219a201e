"""The stage results store: what each stage leaves for ``conveyor report``.

Every stage that has something to report calls
``record_stage_result(project, stage, payload)`` with a JSON-ready dict. The
latest payload per stage is kept in ``<state_dir>/results/<stage>.json`` and
every record is appended to ``<state_dir>/results/history.jsonl`` (the
metric-history plot reads it). Reading never needs MLflow, so a report costs
milliseconds.

Payloads the report renders (extra keys are kept and ignored):

- ``evaluate``: ``{"metrics": {name: float}, "production_metrics": {name: float} | null,
  "baseline_metrics": {name: float}, "primary_metric": str, "model_type": str,
  "version": str | int | null, "gates": [{"name": str, "passed": bool, "reason": str}]}``
- ``drift``: the ``conveyor drift --json`` object (``dataset_drift``, ``drift_share``,
  ``columns``: {name: {type, test, statistic, p_value, threshold, drift}}), each column
  optionally with ``histogram: {"edges": [...], "reference": [...], "current": [...]}``
- ``ab``: ``{"status": str, "unit": "users", "control": {"ctr", "n", "impressions"}, "variant":
  {"ctr", "n", "impressions"}, "lift": float, "ci": [low, high], "p_value": float, "required_n": int,
  "decision": str, "reason": str}`` — ``n`` and ``required_n`` count users, the unit of the test
- any other stage (``train``, ``register``, ``deploy-staging`` …): a flat dict shown as is.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from conveyor.errors import InputError, UsageError
from conveyor.project import Project

_STAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
HISTORY_FILE = "history.jsonl"


def results_dir(project: Project) -> Path:
    return project.state_dir / "results"


def record_stage_result(project: Project, stage: str, payload: dict[str, Any]) -> Path:
    """Keep ``payload`` as the latest result of ``stage`` and append it to the history."""
    if not _STAGE_NAME.match(stage):
        raise UsageError(f"stage name {stage!r}: use lowercase letters, digits, '-' or '_'")
    try:
        text = json.dumps(payload, default=str, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"result of stage {stage!r} is not JSON-ready: {exc}") from exc
    folder = results_dir(project)
    folder.mkdir(parents=True, exist_ok=True)
    record = f'{{"stage": {json.dumps(stage)}, "recorded_at": {time.time():.3f}, "payload": {text}}}'
    path = folder / f"{stage}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(record, encoding="utf-8")
    tmp.replace(path)
    with (folder / HISTORY_FILE).open("a", encoding="utf-8") as fh:
        fh.write(record + "\n")
    return path


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable stage result ({exc})", path=str(path)) from exc
    if not isinstance(record, dict) or not isinstance(record.get("payload"), dict):
        raise InputError(f"{path}: not a stage result (expected stage, recorded_at, payload)", path=str(path))
    return record


def load_stage_results(project: Project) -> dict[str, dict[str, Any]]:
    """The latest payload of every stage that recorded one."""
    folder = results_dir(project)
    if not folder.is_dir():
        return {}
    return {p.stem: _read_record(p)["payload"] for p in sorted(folder.glob("*.json"))}


def load_history(project: Project, stage: str | None = None) -> list[dict[str, Any]]:
    """Every record in order (``stage``, ``recorded_at``, ``payload``), optionally of one stage."""
    path = results_dir(project) / HISTORY_FILE
    if not path.is_file():
        return []
    records: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash mid-append; the others stand
        if isinstance(record, dict) and (stage is None or record.get("stage") == stage):
            records.append(record)
    return records
