"""One deployment per environment at a time: a lock file naming its holder.

``<state_dir>/envs/<env>/deploy.lock`` is locked with ``flock`` and holds the
holder's pid, host, start time and what it is doing. A second deploy is
refused with :class:`~conveyor.errors.DeployConflict` naming the first.

The kernel drops an ``flock`` when its process dies — even by ``kill -9`` —
so a dead holder's lock is free at once, with no race between two processes
taking over a stale file. The holder record stays in the file until a clean
release empties it: a new holder that finds a record of a dead process knows
that deployment was interrupted (:attr:`EnvironmentLock.taken_over`) and can
write that to the ledger. The holder keeps its record current while it works
(:meth:`EnvironmentLock.update`: the candidate's weight, since when), so
``conveyor status`` shows a rollout in progress — or one left behind by a
killed deploy (:meth:`EnvironmentLock.interrupted`) — with its weight, its
start and the command that ran it.

``fcntl.flock`` is used directly (not the ``filelock`` package, used for the
other locks): the holder record lives in the locked file itself and is read
and rewritten through the locked descriptor.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from conveyor.errors import DeployConflict, OperationError


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    started: str
    environment: str
    action: str
    version: str | None = None
    strategy: str | None = None
    command: str = ""  # the command that holds the lock, as an operator would type it
    stable: str | None = None  # the version serving all traffic when the rollout began
    weight: float | None = None  # the candidate's share of traffic in %, while a rollout runs
    weight_since: str | None = None  # when that share was set

    def describe(self) -> str:
        what = self.action + (f" of version {self.version}" if self.version else "")
        how = f" ({self.strategy})" if self.strategy else ""
        return f"{what}{how} by pid {self.pid} on {self.host}, started {self.started}"


def _parse_holder(text: str, environment: str) -> LockHolder | None:
    if not text.strip():
        return None
    try:
        return LockHolder(**json.loads(text))
    except (ValueError, TypeError):
        return LockHolder(0, "?", "?", environment, "unknown (unreadable lock record)")


class EnvironmentLock:
    """Context manager holding the deploy lock of one environment."""

    def __init__(
        self,
        path: Path,
        environment: str,
        action: str,
        *,
        version: str | None = None,
        strategy: str | None = None,
    ) -> None:
        self.path = path
        self.environment = environment
        self.action = action
        self.version = version
        self.strategy = strategy
        self.taken_over: LockHolder | None = None  # set by acquire: an interrupted holder's record
        self._fd: int | None = None
        self._me = LockHolder(0, "", "", environment, action)

    def holder(self) -> LockHolder | None:
        """The recorded holder (None when the file is absent or empty)."""
        try:
            return _parse_holder(self.path.read_text(), self.environment)
        except FileNotFoundError:
            return None

    def interrupted(self) -> LockHolder | None:
        """The record a killed holder left behind (the lock is free, the record is not), else None."""
        if self.probe() is not None:
            return None
        return self.holder()

    def probe(self) -> LockHolder | None:
        """The live holder, or None when nobody holds the lock (read-only: takes nothing)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self.holder()
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # os.open descriptors are not inherited by child processes (PEP 446):
            # a server started during the deploy does not keep the lock.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OperationError(f"cannot open the lock file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self.holder()
            who = holder.describe() if holder else "a process that has not yet written its name"
            raise DeployConflict(
                f"environment {self.environment!r} is locked by another deployment: {who}; "
                "wait for it to finish",
                environment=self.environment,
                holder_pid=holder.pid if holder else None,
                holder_host=holder.host if holder else None,
                lock_file=str(self.path),
            ) from None
        previous = _parse_holder(os.pread(fd, 1 << 16, 0).decode(errors="replace"), self.environment)
        self.taken_over = previous  # a record left behind: its holder died without releasing
        me = LockHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            environment=self.environment,
            action=self.action,
            version=self.version,
            strategy=self.strategy,
        )
        self._fd = fd
        self._write(me)

    def _write(self, holder: LockHolder) -> None:
        if self._fd is None:
            raise OperationError(f"the lock {self.path} is not held: acquire it first")
        data = json.dumps(asdict(holder)).encode()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))
        os.fsync(self._fd)
        self._me = holder

    def update(self, **changes: object) -> None:
        """Rewrite the held record with ``changes`` (command, stable, weight, weight_since)."""
        self._write(replace(self._me, **changes))  # type: ignore[arg-type]

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # a clean exit leaves no record behind
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> EnvironmentLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
