"""What the pages show, read through the packages' public functions, one panel at a time.

Each panel is read on its own: a reader that fails (nothing deployed, a server that
does not answer, a missing or corrupt state file, an MLflow store that fails) gives a
panel holding one line that says so, and the other panels of the page still show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx

from conveyor.project import Project

if TYPE_CHECKING:
    from conveyor.deploy import LedgerEntry

READY_TIMEOUT_SECONDS = 2.0
LAST_DEPLOYMENTS = 10
LAST_CANARIES = 5


@dataclass(frozen=True)
class Panel:
    """One part of a page: its data, or the one line saying why it cannot be shown."""

    data: Any = None
    problem: str | None = None


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_panel(what: str, read: Callable[[], Any]) -> Panel:
    """``read()`` as a panel; any failure becomes ``"<what>: <the error's first line>"``.

    The page is a read-only viewer: whatever a reader raises (a ConveyorError, an OS
    error, JSON that does not parse, MLflow's own exceptions) must become one line on
    the page, never a 500, so the catch is deliberately broad here and only here.
    """
    try:
        return Panel(data=read())
    except Exception as exc:
        return Panel(problem=f"{what}: {one_line(exc)}")


def _ledger_rows(ledger: Sequence[LedgerEntry], env: str) -> dict[str, Any]:
    from conveyor.deploy import serving_versions

    entries = [e for e in ledger if e.environment == env]
    deployments = [
        {k: v for k, v in e.__dict__.items() if k != "details"} for e in entries if e.action != "aliases"
    ]
    # a switch is an entry that alone makes the ledger name a serving version; the timeline
    # is the run of those switches, one row per change of the primary version
    timeline: list[dict[str, Any]] = []
    for entry in entries:
        switched = serving_versions([entry])
        if switched is None:
            continue
        if timeline and timeline[-1]["version"] == switched.primary:
            continue
        if timeline:
            timeline[-1]["until"] = entry.time
        timeline.append(
            {"version": switched.primary, "since": entry.time, "until": None, "by": entry.who,
             "action": entry.action}
        )  # fmt: skip
    return {"last_deployments": deployments[-LAST_DEPLOYMENTS:][::-1], "timeline": timeline[::-1]}


def readiness(url: str) -> dict[str, Any]:
    """The server's ``/ready`` answer: ready, not ready (status and detail), or unreachable."""
    try:
        answer = httpx.get(f"{url}/ready", timeout=READY_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return {"ready": False, "text": f"unreachable: {type(exc).__name__} at {url}"}
    if answer.status_code == 200:
        return {"ready": True, "text": "ready"}
    try:
        detail = str(answer.json().get("detail", ""))
    except ValueError:
        detail = answer.text[:200]
    return {"ready": False, "text": f"not ready ({answer.status_code}){': ' + detail if detail else ''}"}


def environments(project: Project) -> dict[str, Any]:
    """Per environment: the status panel (as ``conveyor status --json``), readiness and the ledger.

    The ledger is read once for the page: the status and each environment's history share it.
    """
    from conveyor.deploy import Ledger, status

    names = list(project.settings.deploy.environments)
    ledger = read_panel("ledger", lambda: Ledger.of(project).entries())
    # when the ledger cannot be read, the status reads it itself and says so in its own panel
    entries: list[LedgerEntry] | None = None if ledger.problem else ledger.data
    overall = read_panel("status", lambda: status(project, entries)["environments"])

    def history(name: str) -> Panel:
        if entries is None:
            return ledger  # the ledger's one line, under each environment
        return read_panel("ledger", partial(_ledger_rows, entries, name))

    out: dict[str, Any] = {}
    for name in names:
        env_settings = project.settings.deploy.environments[name]
        url = f"http://{env_settings.host}:{env_settings.port}"
        env_status = None if overall.data is None else overall.data.get(name)
        out[name] = {
            "url": url,
            "status": Panel(data=env_status, problem=overall.problem),
            "readiness": read_panel("readiness", partial(readiness, url)),
            "ledger": history(name),
        }
    return out


def models(project: Project) -> dict[str, Any]:
    """Registered versions with aliases and lineage; the latest evaluation's metrics and gates."""
    from conveyor.registry import Lineage, list_versions, tracking_client
    from conveyor.reports import load_stage_results

    def versions() -> list[dict[str, Any]]:
        # MLflow's version search leaves each version's aliases out; the registered model
        # holds them all (alias -> version), read in one call
        registered = tracking_client(project).get_registered_model(project.model_name)
        aliases: dict[str, list[str]] = {}
        for alias, version in sorted(dict(registered.aliases or {}).items()):
            aliases.setdefault(str(version), []).append(alias)
        rows = []
        for mv in sorted(list_versions(project), key=lambda v: int(v.version), reverse=True):
            lineage = Lineage.from_tags(mv.tags)
            rows.append({"version": mv.version, "aliases": aliases.get(mv.version, []), "run_id": mv.run_id,
                         "model_type": lineage.model_type, "data": lineage.data_fingerprint,
                         "commit": lineage.git_commit, "sha256": lineage.sha256})  # fmt: skip
        return rows

    return {
        "versions": read_panel("model registry", versions),
        "evaluation": read_panel("stage results", lambda: load_stage_results(project).get("evaluate")),
    }


def ab_test(project: Project) -> Panel:
    """The live A/B state, from the same function as ``conveyor ab status --json``."""
    from conveyor.deploy import ab_status

    return read_panel("A/B test", lambda: ab_status(project).to_dict())


def rollouts(project: Project) -> dict[str, Any]:
    """The rollouts page: each environment's canaries, the running A/B test and the concluded ones.

    The ledger is read once for the page (the canaries and the A/B history share it); when it cannot
    be read, its one line stands under each part that needs it.
    """
    from conveyor.deploy import Ledger

    ledger = read_panel("ledger", lambda: Ledger.of(project).entries())
    return {"canaries": canaries(project, ledger), "ab": ab_test(project), "ab_history": ab_history(ledger)}


def canaries(project: Project, ledger: Panel) -> dict[str, Panel]:
    """Per environment: its last canary rollouts from the ledger, newest first, step by step."""
    from conveyor.ui._rollouts import canary_rollouts

    def read(name: str) -> list[Any]:
        return canary_rollouts(e for e in ledger.data if e.environment == name)[:LAST_CANARIES]

    names = project.settings.deploy.environments
    if ledger.problem:
        return dict.fromkeys(names, ledger)
    return {name: read_panel("canary rollouts", partial(read, name)) for name in names}


def data(project: Project) -> dict[str, Any]:
    """The monitor's view of each environment, the latest validation and ``conveyor drift``."""
    from conveyor.ui._data import latest_stage, monitor_view

    def pipeline_drift() -> dict[str, Any] | None:
        found = latest_stage(project, "drift")
        if found is None:
            return None
        columns = [{"name": k, **v} for k, v in (found.get("columns") or {}).items()]
        return {**found, "columns": columns}

    return {
        "monitor": {
            name: read_panel("monitor reports", partial(monitor_view, project, name))
            for name in project.settings.deploy.environments
        },
        "validation": read_panel("validation", partial(latest_stage, project, "validate")),
        "pipeline_drift": read_panel("drift", pipeline_drift),
    }


def ab_history(ledger: Panel) -> Panel:
    """The concluded A/B tests (every environment), newest first: the ledger's ``ab-conclude`` lines."""
    if ledger.problem:
        return ledger

    def read() -> list[dict[str, Any]]:
        rows = []
        for e in ledger.data:
            if e.action != "ab-conclude":
                continue
            test = e.details.get("test") or {}
            rows.append({
                "time": e.time, "environment": e.environment, "experiment": e.details.get("experiment"),
                "outcome": e.outcome, "serving": e.version, "who": e.who, "reason": e.reason,
                "lift": test.get("lift"), "lift_ci": test.get("lift_ci"), "p_value": test.get("p_value"),
                "users": [test.get("control_users"), test.get("variant_users")],
            })  # fmt: skip
        return rows[::-1]

    return read_panel("A/B history", read)
