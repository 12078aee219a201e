"""The watchdog: a small process per environment that restarts its server when it dies.

Who supervises, and why a watchdog. The server must outlive the command
that deployed it, so it runs detached; a supervising parent (the server
launched as the child of a ``supervise`` process) would detect a death a
little sooner through ``wait()``, but when that parent is killed the server
runs on unwatched and the next command has to adopt it anyway — by polling.
So the watchdog polls from the start (every :data:`POLL_SECONDS`, with
psutil: the recorded pid *and* its start time, so a reused pid is not mistaken
for the server), whichever process started the server. ``deploy`` and
``rollback`` start it (:meth:`EnvironmentProcess.ensure_watchdog`) and start
a new one when it was killed; a file lock keeps one watchdog per environment.
On Kubernetes or systemd (issue "Production for real, part 2") the platform
restarts the server and ``supervise: false`` turns the watchdog off.

On a death it waits a back-off (``restart_backoff_seconds``, doubled after
each restart up to :data:`MAX_BACKOFF_SECONDS`, back to the start after
:data:`RESTART_WINDOW_SECONDS` of uptime), starts the version the ledger
says the environment serves, preloads the ledger's previous version (so
``conveyor rollback`` stays an instant switch after a restart), and writes a
``restart`` ledger line.

A server can also hang alive (a deadlock, a stopped process, a model call that never
returns): every :data:`LIVENESS_INTERVAL_SECONDS` the watchdog sends ``GET /health``
with ``liveness_timeout_seconds``; ``liveness_failures`` consecutive failures (0 turns
the probe off) and it kills the server with SIGKILL and restarts it like a dead one —
the same back-off, the same limit, a ``restart`` ledger line that says it hung. After
``restart_limit`` restarts within the window
it gives up: a ``restart gave-up`` ledger line, an alert, and it exits —
``conveyor monitor`` reports the environment down from then on.

Stopping the environment (:meth:`EnvironmentProcess.stop`) leaves a
``stopped`` marker and stops the watchdog with SIGTERM, which it obeys at
once; a watchdog still starting up sees the marker and exits without
restarting anything. The next ``deploy`` removes the marker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import deque
from types import FrameType

import psutil
from filelock import FileLock, Timeout

from conveyor.deploy._controller import ServerClient
from conveyor.deploy._ledger import Ledger, LedgerEntry
from conveyor.deploy._processes import ProcessRecord, write_record
from conveyor.deploy._supervisor import STOP_GRACE_SECONDS, EnvironmentProcess, ServerRecord
from conveyor.errors import ConveyorError
from conveyor.project import Project

POLL_SECONDS = 0.2
LIVENESS_INTERVAL_SECONDS = 1.0
RESTART_WINDOW_SECONDS = 600.0
MAX_BACKOFF_SECONDS = 30.0


class _Stop:
    """Set by SIGTERM/SIGINT: the watchdog leaves its loop at the next poll."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when asked to stop meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.requested and time.monotonic() < deadline:
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        return self.requested


def watch(project: Project, env_name: str) -> int:
    """Watch ``env_name``'s server until stopped or given up; the process exit code."""
    process = EnvironmentProcess(project, env_name)
    guard = FileLock(str(process.directory / "watchdog.lock"))
    try:
        guard.acquire(timeout=0)
    except Timeout:
        return 0  # another watchdog watches this environment
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    write_record(process.watchdog_file, ProcessRecord.of(os.getpid(), "watchdog"))
    try:
        return _loop(project, process, stop)
    finally:
        guard.release()


def _loop(project: Project, process: EnvironmentProcess, stop: _Stop) -> int:
    settings = process.settings
    ledger = Ledger.of(project)
    restarts: deque[float] = deque()
    backoff = settings.restart_backoff_seconds
    up_since = time.monotonic()
    probe = _Liveness(process)
    while not stop.requested and not process.stopped_marker.exists():
        alive = process.record()
        hung = probe.hung(alive)
        if alive is not None and not hung:
            if time.monotonic() - up_since > RESTART_WINDOW_SECONDS:
                backoff = settings.restart_backoff_seconds
            stop.sleep(POLL_SECONDS)
            continue
        if hung and alive is not None:
            _kill(alive.process)
        lost = process.recorded()
        detected = time.monotonic()
        while restarts and detected - restarts[0] > RESTART_WINDOW_SECONDS:
            restarts.popleft()
        if len(restarts) >= settings.restart_limit:
            _give_up(project, process, lost.pid if lost else None, len(restarts))
            return 1
        if stop.sleep(backoff) or process.stopped_marker.exists():
            break  # stopped deliberately meanwhile
        restarts.append(time.monotonic())
        expected = ledger.serving(process.name)
        try:
            record = process.start(wait_path="/ready", version=expected.primary if expected else None)
        except ConveyorError as exc:
            reason = f"the {process.name} server could not be restarted: {exc}"
            ledger.append(LedgerEntry(process.name, "restart", "failed", None, None, reason))
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS) or POLL_SECONDS
            continue
        preloaded = _preload_previous(process, expected.previous if expected else None)
        took = time.monotonic() - detected
        what = f"hung ({hung} /health probes failed) and was killed" if hung else "was gone"
        reason = (
            f"server pid {lost.pid if lost else '?'} {what}; restarted as pid {record.pid} "
            f"serving {expected.primary if expected else 'its alias'} after a {backoff:g} s back-off "
            f"(restart {len(restarts)} of {settings.restart_limit} in {RESTART_WINDOW_SECONDS / 60:g} min)"
        )
        details = {
            "dead_pid": lost.pid if lost else None,
            "new_pid": record.pid,
            "backoff_seconds": backoff,
            "restart_seconds": round(took, 3),
            "previous_preloaded": preloaded,
            "hung": bool(hung),
            "failed_probes": hung,
        }
        version = expected.primary if expected else None
        ledger.append(LedgerEntry(process.name, "restart", "ok", version, None, reason, details=details))
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        up_since = time.monotonic()
    return 0


class _Liveness:
    """Consecutive failed ``GET /health`` probes of a live server, one per interval."""

    def __init__(self, process: EnvironmentProcess) -> None:
        self.process = process
        self.failures = 0
        self.next_probe = 0.0

    def hung(self, alive: ServerRecord | None) -> int:
        """The failed probes in a row once they reach the limit (the server hangs), else 0."""
        settings = self.process.settings
        if alive is None or not settings.liveness_failures:
            self.failures = 0
            return 0
        if time.monotonic() < self.next_probe:
            return 0
        ok = self.process.healthy("/health", timeout=settings.liveness_timeout_seconds)
        self.next_probe = time.monotonic() + LIVENESS_INTERVAL_SECONDS
        self.failures = 0 if ok else self.failures + 1
        if self.failures < settings.liveness_failures:
            return 0
        failed, self.failures = self.failures, 0
        return failed


def _kill(server: ProcessRecord) -> None:
    """SIGKILL a hung server (a stopped one too) and wait until it is gone."""
    proc = server.process()
    if proc is None:
        return
    with contextlib.suppress(psutil.Error):
        proc.kill()
        proc.wait(STOP_GRACE_SECONDS)


def _preload_previous(process: EnvironmentProcess, previous: str | None) -> str | None:
    """Load the ledger's previous version beside the primary: rollback stays a switch."""
    if previous is None or not process.project.settings.serving.admin_token_env:
        return None
    client = ServerClient(process.base_url, process.token(), environment=process.name)
    try:
        client.load(previous)
    except ConveyorError:
        return None  # a rollback loads it then; the restart itself succeeded
    return previous


def _give_up(project: Project, process: EnvironmentProcess, pid: int | None, count: int) -> None:
    reason = (
        f"the {process.name} server died again after {count} restarts within "
        f"{RESTART_WINDOW_SECONDS / 60:g} min; the watchdog stopped restarting it "
        f"(last log line: {process.log_tail()!r})"
    )
    Ledger.of(project).append(
        LedgerEntry(process.name, "restart", "gave-up", None, None, reason, details={"dead_pid": pid})
    )
    from conveyor.monitoring import send_alert

    with contextlib.suppress(ConveyorError):  # the ledger line and `conveyor monitor` still report it
        send_alert(
            project, f"Conveyor: the {process.name} server is down", reason,
            {"environment": process.name, "log": str(process.log_file)},
            incident=f"watchdog:{process.name}:gave-up",
        )  # fmt: skip
