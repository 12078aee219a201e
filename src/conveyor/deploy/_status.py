"""``conveyor status``: each environment's server, versions, traffic, work in progress and history.

A rollout in progress is shown from its lock record (what, which command,
the candidate's weight and since when); a rollout whose process was killed
leaves that record behind with the lock free, and is shown as
``interrupted`` until the next deploy or rollback recovers it. The watchdog,
the ledger's expected version and the last registry-alias update are shown
too, so a server that is down or serves the wrong version is visible here.

Every replica is listed (``replicas``: URL, readiness, primary, weights, or
the error it answered with); ``server`` is their merged state. A replica of
another project or environment is listed with its one-line error and
``foreign: true`` — the command then exits 2 after printing the status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conveyor.deploy._controller import ServerClient, ServerState
from conveyor.deploy._environment import Environment
from conveyor.deploy._fleet import merge_states
from conveyor.deploy._ledger import Ledger, LedgerEntry, serving_versions
from conveyor.deploy._lock import LockHolder
from conveyor.errors import ConveyorError, UsageError
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


def _replica(client: ServerClient, up: bool) -> tuple[dict[str, Any], ServerState | None]:
    """One replica's line of the status, and its state when it answered."""
    line: dict[str, Any] = {"url": client.base_url, "ready": False, "primary": None, "previous": None}
    line["weights"], line["error"] = {}, None
    if not up:
        line["error"] = "not running"
        return line, None
    try:
        state = client.state()
    except ConveyorError as exc:
        line["error"] = str(exc)
        line["foreign"] = isinstance(exc, UsageError)
        return line, None
    line.update(
        ready=client.ready(),
        primary=state.primary,
        previous=state.previous,
        weights={v.version: v.share for v in state.versions if v.share > 0},
        mode=state.mode,
        salt=state.salt,  # a canary's or A/B test's sticky assignment: the same on every replica
    )
    return line, state


def environment_status(
    project: Project, name: str, ledger: Sequence[LedgerEntry] | None = None
) -> dict[str, Any]:
    """One environment's status; ``ledger``: the entries already read (every environment's, oldest
    first), so a caller that shows several environments reads the ledger once; read here when None."""
    env = Environment.open(project, name)
    record = None if env.remote else env.process.record()
    replicas = [_replica(c, env.remote or record is not None) for c in env.client.clients]
    answered = [(line["url"], state) for line, state in replicas if state is not None]
    status: dict[str, Any] = {
        "url": env.client.base_url,
        "remote": env.remote,
        "replicas": [line for line, _ in replicas],
        "running": all(line["ready"] for line, _ in replicas) if env.remote else record is not None,
        "pid": record.pid if record else None,
        "log": None if env.remote else str(env.process.log_file),
        "server": merge_states(answered).to_dict() if answered else None,
        "in_progress": None,
        "interrupted": None,
        "ab_test": None,
        "mismatch": None,
    }
    watchdog = env.process.watchdog()
    status["watchdog"] = None if watchdog is None else {"pid": watchdog.pid}
    if ledger is None:
        entries = Ledger.of(project).entries(name)
    else:
        entries = [e for e in ledger if e.environment == name]
    expected = serving_versions(entries)
    status["expected"] = None if expected is None else expected.__dict__
    errors = [str(line["error"]) for line, _ in replicas if line.get("foreign")]
    if record is not None and not answered:
        status["server_error"] = replicas[0][0]["error"]
    if errors:
        status["foreign"] = errors
    lock = env.lock("status")
    holder = lock.probe()
    if holder is not None:
        status["in_progress"] = _rollout(holder)
    else:
        left = lock.holder()  # a record with the lock free: its holder was killed
        if left is not None:
            status["interrupted"] = {
                **_rollout(left),
                "note": "this command did not finish (killed, or its state store failed); "
                "the next deploy or rollback reverts what it left",
            }
    served = (status["server"] or {}).get("primary")
    if expected is not None and served is not None and served != expected.primary and holder is None:
        # no rollout runs, yet the servers and the ledger disagree: a switch whose ledger line never
        # reached the store (its answer lost), or a change made by hand through the admin API
        status["mismatch"] = (
            f"{name} serves {served} as its primary version but the ledger expects {expected.primary}: "
            f"`conveyor deploy --env {name} --version {expected.primary}` puts the servers back in line "
            "with the ledger, a deploy of another version records a new line"
        )
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


def status(project: Project, ledger: Sequence[LedgerEntry] | None = None) -> dict[str, Any]:
    """Every configured environment's status, from one read of the ledger (``ledger`` when given)."""
    entries = Ledger.of(project).entries() if ledger is None else ledger
    return {
        "environments": {
            name: environment_status(project, name, entries) for name in project.settings.deploy.environments
        }
    }
