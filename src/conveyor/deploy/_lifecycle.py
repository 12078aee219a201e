"""``conveyor env start|stop|restart|logs``: a local environment's server, by hand.

A local environment's server normally starts with its first deploy and is
restarted by its watchdog when it dies. These commands let an operator stop
it (watchdog first, so nothing restarts it), start it again — serving what the
ledger says the environment serves, with the previous version preloaded so
``conveyor rollback`` stays a switch — and read its log.

Each takes the environment's deploy lock, so a stop never cuts a rollout in
half (a running deploy makes it fail with :class:`~conveyor.errors.DeployConflict`).
Remote environments (replicas given by URL) are refused with one line: their
platform (systemd, Kubernetes, an operator) runs them; ``conveyor status``
shows them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from conveyor.deploy._environment import Environment, Progress, quiet, record, recover
from conveyor.deploy._ledger import LedgerEntry
from conveyor.errors import ConveyorError, UsageError
from conveyor.project import Project

DEFAULT_LOG_LINES = 50


def _local(project: Project, name: str, command: str) -> Environment:
    env = Environment.open(project, name)
    env.process.refuse_remote(f"conveyor env {command}")
    return env


def _start(env: Environment, progress: Progress) -> dict[str, Any]:
    if env.process.running():
        record_ = env.process.record()
        env.process.ensure_watchdog()
        return {"outcome": "running", "pid": record_.pid if record_ else None}
    expected = env.ledger().serving(env.name)
    version = expected.primary if expected else None
    progress(f"starting the {env.name} server on {env.process.base_url} ({version or 'its alias'})")
    env.process.token_env()  # a UsageError when the admin API is switched off
    started = env.process.start(wait_path="/ready", version=version)
    preloaded = None
    if expected is not None and expected.previous is not None:
        with contextlib.suppress(ConveyorError):  # a rollback loads it then
            env.client.load(expected.previous)
            preloaded = expected.previous
    env.process.ensure_watchdog()
    reason = f"started by hand as pid {started.pid} serving {version or 'its alias'}"
    record(
        env.project,
        LedgerEntry(env.name, "start", "ok", version, None, reason, details={"pid": started.pid}),
    )
    return {"outcome": "started", "pid": started.pid, "version": version, "previous_preloaded": preloaded}


def _stop(env: Environment) -> dict[str, Any]:
    recorded = env.process.record()
    stopped = env.process.stop()
    if stopped:
        reason = f"stopped by hand (pid {recorded.pid if recorded else '?'}); its watchdog stopped first"
        record(env.project, LedgerEntry(env.name, "stop", "ok", None, None, reason))
    return {"outcome": "stopped" if stopped else "not-running"}


def start_environment(project: Project, name: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Start ``name``'s server (and watchdog) unless it runs; what was done."""
    env = _local(project, name, "start")
    with env.lock("start") as lock:
        recover(env, lock, progress)  # an interrupted rollout is put right, not forgotten
        return {"environment": name, "url": env.process.base_url, **_start(env, progress)}


def stop_environment(project: Project, name: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Stop ``name``'s watchdog, then its server; what was done."""
    env = _local(project, name, "stop")
    with env.lock("stop") as lock:
        recover(env, lock, progress)  # an interrupted rollout is put right, not forgotten
        return {"environment": name, "url": env.process.base_url, **_stop(env)}


def restart_environment(project: Project, name: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Stop, then start ``name``'s server, under one hold of the deploy lock."""
    env = _local(project, name, "restart")
    with env.lock("restart") as lock:
        recover(env, lock, progress)  # an interrupted rollout is put right, not forgotten
        stopped = _stop(env)
        started = _start(env, progress)
    return {"environment": name, "url": env.process.base_url, "stopped": stopped["outcome"], **started}


def environment_log(project: Project, name: str, lines: int = DEFAULT_LOG_LINES) -> dict[str, Any]:
    """The last ``lines`` lines of ``name``'s server log."""
    if lines <= 0:
        raise UsageError(f"--lines {lines}: expected a positive number of lines")
    env = _local(project, name, "logs")
    path = env.process.log_file
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        text = ""
    return {"environment": name, "log": str(path), "lines": text.splitlines()[-lines:]}
