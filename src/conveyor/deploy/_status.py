"""``conveyor status``: each environment's server, versions, traffic, work in progress and history.

A rollout in progress is shown from its lock record (what, which command,
the candidate's weight and since when); a rollout whose process was killed
leaves that record behind with the lock free, and is shown as
``interrupted`` until the next deploy or rollback recovers it. The watchdog,
the ledger's expected version and the last registry-alias update are shown
too, so a server that is down or serves the wrong version is visible here.
"""

from __future__ import annotations

from typing import Any

from conveyor.deploy._environment import Environment
from conveyor.deploy._ledger import Ledger
from conveyor.deploy._lock import LockHolder
from conveyor.errors import ServiceError
from conveyor.project import Project

LAST_DEPLOYMENTS = 5
BOOKKEEPING = {"aliases"}  # ledger lines that follow a switch, shown apart from the deployments


def _rollout(holder: LockHolder) -> dict[str, Any]:
    return {
        "action": holder.action,
        "strategy": holder.strategy,
        "version": holder.version,
        "command": holder.command,
        "stable": holder.stable,
        "weight": holder.weight,
        "weight_since": holder.weight_since,
        "pid": holder.pid,
        "host": holder.host,
        "since": holder.started,
    }


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
        "interrupted": None,
        "ab_test": None,
    }
    watchdog = env.process.watchdog()
    status["watchdog"] = None if watchdog is None else {"pid": watchdog.pid}
    ledger = Ledger.of(project)
    entries = ledger.entries(name)
    expected = ledger.serving(name)
    status["expected"] = None if expected is None else expected.__dict__
    if record is not None:
        try:
            status["server"] = env.client.state().to_dict()
        except ServiceError as exc:
            status["server_error"] = str(exc)
    lock = env.lock("status")
    holder = lock.probe()
    if holder is not None:
        status["in_progress"] = _rollout(holder)
    else:
        left = lock.holder()  # a record with the lock free: its holder was killed
        if left is not None:
            status["interrupted"] = {
                **_rollout(left),
                "note": "this command was killed; the next deploy or rollback reverts what it left",
            }
    plan = env.ab_plan()
    if plan is not None:
        status["ab_test"] = {k: plan.get(k) for k in ("id", "control", "variant", "variant_ratio", "started")}
    deployments = [e for e in entries if e.action not in BOOKKEEPING]
    status["last_deployments"] = [
        {k: v for k, v in e.__dict__.items() if k != "details"} for e in deployments[-LAST_DEPLOYMENTS:]
    ]
    aliases = [e for e in entries if e.action in BOOKKEEPING]
    status["aliases"] = (
        None if not aliases else {"outcome": aliases[-1].outcome, "reason": aliases[-1].reason}
    )
    return status


def status(project: Project) -> dict[str, Any]:
    """Every configured environment's status."""
    return {
        "environments": {
            name: environment_status(project, name) for name in project.settings.deploy.environments
        }
    }
