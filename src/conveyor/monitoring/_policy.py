"""Retraining triggers: when monitoring asks for a new model, and how.

The policy (``monitoring.retrain``) fires on any of:

- dataset drift of the live inputs (``on_dataset_drift``);
- a drop of the online metric (click-through rate, or accuracy once labels
  arrive) by more than ``metric_drop_pct`` % against the model's baseline;
- a model older than ``max_model_age_days``.

When it fires, ``action`` says what happens: ``github`` dispatches the
retraining workflow, ``local`` runs the pipeline's training stages with the
``conveyor`` command line in a subprocess (the very commands the workflow
runs), ``none`` only reports. A cooldown (``cooldown_hours``) after each
trigger prevents retrain storms while a new model is on its way.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from conveyor.config import RetrainAction, RetrainPolicy
from conveyor.errors import ConveyorError
from conveyor.monitoring._dispatch import REASON_INPUT, dispatch_workflow
from conveyor.monitoring._state import (
    RETRAIN_FILE,
    monitoring_dir,
    parse_time,
    read_state,
    utcnow,
    write_state,
)
from conveyor.project import Project
from conveyor.stage_graph import PIPELINE

# The stages the local action runs: from training up to staging. Production
# is left to the deploy strategy (canary/A/B) and its gates, as on GitHub.
LOCAL_STAGES = ("train", "evaluate", "register", "deploy-staging", "smoke")

RetrainStatus = Literal["not-needed", "disabled", "cooldown", "dispatched", "ran", "failed"]


@dataclass(frozen=True)
class PolicySignals:
    """What the monitor measured that the policy looks at."""

    dataset_drift: bool = False
    drifted_columns: tuple[str, ...] = ()
    metric: str | None = None
    metric_drop_pct: float | None = None
    model_version: str | None = None
    model_age_days: float | None = None


@dataclass(frozen=True)
class RetrainDecision:
    """The policy's verdict and what was done about it."""

    reasons: list[str]
    action: str
    status: RetrainStatus
    detail: str | None = None
    dispatch: dict[str, Any] | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def triggered(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "triggered": self.triggered}


def retrain_reasons(policy: RetrainPolicy, signals: PolicySignals) -> list[str]:
    """The triggers that fire for ``signals`` (empty: no retraining needed)."""
    reasons: list[str] = []
    if policy.on_dataset_drift and signals.dataset_drift:
        cols = ", ".join(signals.drifted_columns) or "inputs"
        reasons.append(f"dataset drift ({cols})")
    if (
        policy.metric_drop_pct is not None
        and signals.metric_drop_pct is not None
        and signals.metric_drop_pct > policy.metric_drop_pct
    ):
        reasons.append(
            f"{signals.metric or 'online metric'} dropped {signals.metric_drop_pct:.1f} %"
            f" (> {policy.metric_drop_pct:g} %)"
        )
    if (
        policy.max_model_age_days is not None
        and signals.model_age_days is not None
        and signals.model_age_days > policy.max_model_age_days
    ):
        model = f"model {signals.model_version}" if signals.model_version else "model"
        reasons.append(f"{model} is {signals.model_age_days:.1f} days old (> {policy.max_model_age_days:g})")
    return reasons


def local_commands(project: Project) -> list[tuple[str, list[str]]]:
    """(stage, argv) of each stage the local action runs, in order."""
    by_name = {s.name: s for s in PIPELINE}
    base = [sys.executable, "-m", "conveyor", "--project", str(project.root)]
    return [(name, [*base, *by_name[name].command]) for name in LOCAL_STAGES if name in by_name]


def _run_local(project: Project, stamp: str) -> tuple[RetrainStatus, str, list[dict[str, Any]]]:
    log_path = monitoring_dir(project) / f"retrain-{stamp}.log"
    stages: list[dict[str, Any]] = []
    with log_path.open("w", encoding="utf-8") as log:
        for name, argv in local_commands(project):
            log.write(f"$ conveyor {' '.join(argv[5:])}\n")
            log.flush()
            proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, cwd=project.root, check=False)
            stages.append({"stage": name, "exit_code": proc.returncode})
            if proc.returncode != 0:
                return "failed", f"stage {name} exited {proc.returncode}; log: {log_path}", stages
    return "ran", f"pipeline ran to staging; log: {log_path}", stages


def apply_policy(
    project: Project, signals: PolicySignals, *, now: datetime | None = None, reason_prefix: str = ""
) -> RetrainDecision:
    """Evaluate the policy for ``signals`` and carry out its action (respecting the cooldown)."""
    policy = project.settings.monitoring.retrain
    action = policy.action.value
    reasons = retrain_reasons(policy, signals)
    if not reasons:
        return RetrainDecision([], action, "not-needed")
    if policy.action is RetrainAction.NONE:
        return RetrainDecision(reasons, action, "disabled", "monitoring.retrain.action is none")
    now = now or utcnow()
    state = read_state(project, RETRAIN_FILE)
    last = parse_time(state.get("triggered_at"))
    if last is not None and now - last < timedelta(hours=policy.cooldown_hours):
        until = last + timedelta(hours=policy.cooldown_hours)
        return RetrainDecision(
            reasons,
            action,
            "cooldown",
            f"retraining triggered at {last.isoformat()}; next after {until.isoformat()}",
        )
    summary = "; ".join(reasons)
    if policy.action is RetrainAction.GITHUB:
        try:
            result = dispatch_workflow(project, {REASON_INPUT: (reason_prefix + summary)[:1000]})
        except ConveyorError as exc:
            return RetrainDecision(reasons, action, "failed", str(exc))
        decision = RetrainDecision(
            reasons, action, "dispatched", f"{result.workflow} on {result.ref}", dispatch=result.to_dict()
        )
    else:
        status, detail, stages = _run_local(project, now.strftime("%Y%m%dT%H%M%SZ"))
        decision = RetrainDecision(reasons, action, status, detail, stages=stages)
    write_state(project, RETRAIN_FILE, {"triggered_at": now.isoformat(), "reasons": reasons, "action": action,
                       "status": decision.status})  # fmt: skip
    return decision
