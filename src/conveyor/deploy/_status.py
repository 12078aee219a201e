"""``conveyor status``: each environment's server, versions, traffic, work in progress and history."""

from __future__ import annotations

import json
from typing import Any

from conveyor.deploy._ledger import Ledger
from conveyor.deploy._strategies import Environment
from conveyor.errors import ServiceError
from conveyor.project import Project

LAST_DEPLOYMENTS = 5


def environment_status(project: Project, name: str) -> dict[str, Any]:
    env = Environment.open(project, name)
    record = env.process.record()
    status: dict[str, Any] = {
        "url": env.process.base_url,
        "running": record is not None,
        "pid": record.pid if record else None,
        "log": str(env.process.log_file),
        "server": None,
        "in_progress": None,
        "ab_test": None,
    }
    if record is not None:
        try:
            status["server"] = env.client.state().to_dict()
        except ServiceError as exc:
            status["server_error"] = str(exc)
    holder = env.lock("status").probe()
    if holder is not None:
        status["in_progress"] = {
            "action": holder.action,
            "strategy": holder.strategy,
            "version": holder.version,
            "pid": holder.pid,
            "since": holder.started,
        }
    if env.ab_file.exists():
        plan = json.loads(env.ab_file.read_text())
        status["ab_test"] = {k: plan.get(k) for k in ("id", "control", "variant", "variant_ratio", "started")}
    status["last_deployments"] = [
        {k: v for k, v in e.__dict__.items() if k != "details"}
        for e in Ledger.of(project).entries(name, limit=LAST_DEPLOYMENTS)
    ]
    return status


def status(project: Project) -> dict[str, Any]:
    """Every configured environment's status."""
    return {
        "environments": {
            name: environment_status(project, name) for name in project.settings.deploy.environments
        }
    }
