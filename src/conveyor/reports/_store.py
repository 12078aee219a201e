"""The stage results store: what each stage leaves for ``conveyor report``.

Every stage that has something to report calls
``record_stage_result(project, stage, payload)`` with a JSON-ready dict. The
latest payload per stage is kept in the state document ``results/<stage>`` and
every record is appended to the log ``results/history`` (the metric-history
plot reads it) of the project's state store (:mod:`conveyor.state`): in the
local folder ``<state_dir>/results/<stage>.json`` and ``results/history.jsonl``,
in PostgreSQL rows every runner of a team reads — a report made on one runner
shows the stages another ran. Reading never needs MLflow, so a report costs
milliseconds.

A report describes ONE pipeline run. Each record carries the id of the
pipeline run it belongs to (``pipeline_run``): ``conveyor run`` sets
``CONVEYOR_PIPELINE_RUN`` for its stages, a GitHub workflow run is identified
by ``GITHUB_RUN_ID``/``GITHUB_RUN_ATTEMPT``, and a stage run by hand outside
both has none. :func:`load_stage_results` returns the stages of the pipeline
run of the most recent record (or of the ``pipeline_run`` asked for); among
records without an id, the latest of each stage. Either way the training
stages shown (``train``, ``evaluate``, ``register``) are those of one training
run: a ``train`` or ``register`` result about another run than the evaluated
one is left out.

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

from conveyor.config import env_flag
from conveyor.errors import InputError, UsageError
from conveyor.project import Project
from conveyor.state import Document, open_store

_STAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
RESULTS = "results"
HISTORY_LOG = f"{RESULTS}/history"
PIPELINE_RUN_VAR = "CONVEYOR_PIPELINE_RUN"
_TRAINING_STAGES = ("train", "register")  # tied to the evaluated training run by run_id


def current_pipeline_run() -> str | None:
    """The pipeline run this process belongs to: ``conveyor run``'s id, the GitHub run, or None."""
    own = env_flag(PIPELINE_RUN_VAR)
    if own:
        return own
    github = env_flag("GITHUB_RUN_ID")
    if github:
        return f"github-{github}-{env_flag('GITHUB_RUN_ATTEMPT') or '1'}"
    return None


def results_dir(project: Project) -> Path:
    """Where the local folder keeps the stage results (used when the state store is that folder)."""
    return project.state_dir / RESULTS


def record_stage_result(
    project: Project, stage: str, payload: dict[str, Any], *, pipeline_run: str | None = None
) -> str:
    """Keep ``payload`` as the latest result of ``stage`` and append it to the history; the document key.

    ``pipeline_run`` defaults to :func:`current_pipeline_run`.
    """
    if not _STAGE_NAME.match(stage):
        raise UsageError(f"stage name {stage!r}: use lowercase letters, digits, '-' or '_'")
    try:
        text = json.dumps(payload, default=str, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"result of stage {stage!r} is not JSON-ready: {exc}") from exc
    run = pipeline_run if pipeline_run is not None else current_pipeline_run()
    record = {
        "stage": stage,
        "recorded_at": round(time.time(), 3),
        "pipeline_run": run,
        "payload": json.loads(text),
    }
    store = open_store(project)
    key = f"{RESULTS}/{stage}"
    store.put(key, record)
    store.append(HISTORY_LOG, record)
    return key


def _checked(document: Document) -> dict[str, Any]:
    record = document.data
    if not isinstance(record.get("payload"), dict):
        raise InputError(
            f"{document.key}: not a stage result (expected stage, recorded_at, payload)", path=document.key
        )
    return record


def _latest_records(project: Project) -> dict[str, dict[str, Any]]:
    store = open_store(project)
    found: dict[str, dict[str, Any]] = {}
    for key in store.keys(RESULTS):
        try:
            document = store.get(key)
        except InputError as exc:
            raise InputError(f"{key}: unreadable stage result ({exc})", path=key) from exc
        if document is not None:
            found[key.rsplit("/", 1)[-1]] = _checked(document)
    return found


def _same_training_run(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    run_id = (results.get("evaluate") or {}).get("run_id")
    if not run_id:
        return results
    return {
        stage: payload
        for stage, payload in results.items()
        if stage not in _TRAINING_STAGES or payload.get("run_id") in (None, run_id)
    }


def latest_pipeline_run(project: Project) -> str | None:
    """The pipeline run of the most recent record (None: the latest record has no id)."""
    history = load_history(project)  # in append order: two records in one millisecond stay ordered
    if history:
        run = history[-1].get("pipeline_run")
        return str(run) if run else None
    records = _latest_records(project)
    if not records:
        return None
    newest = max(records.values(), key=lambda r: float(r.get("recorded_at", 0)))
    run = newest.get("pipeline_run")
    return str(run) if run else None


def load_stage_results(project: Project, pipeline_run: str | None = None) -> dict[str, dict[str, Any]]:
    """The payload of every stage of one pipeline run (default: the run of the latest record)."""
    run = pipeline_run if pipeline_run is not None else latest_pipeline_run(project)
    if run is None:
        latest = _latest_records(project)
        results = {s: r["payload"] for s, r in latest.items() if not r.get("pipeline_run")}
        return _same_training_run(results)
    results = {}
    for record in load_history(project):
        if record.get("pipeline_run") == run and isinstance(record.get("payload"), dict):
            results[str(record.get("stage"))] = record["payload"]  # later records win
    if pipeline_run is not None and not results:
        raise UsageError(f"no stage recorded a result for pipeline run {pipeline_run!r}")
    return _same_training_run(results)


def load_history(project: Project, stage: str | None = None) -> list[dict[str, Any]]:
    """Every record in order (``stage``, ``recorded_at``, ``payload``), optionally of one stage."""
    records = (r.data for r in open_store(project).read(HISTORY_LOG))
    return [r for r in records if stage is None or r.get("stage") == stage]
