"""One deployment per environment at a time: the lock ``envs/<env>/deploy`` of the state store.

The lock carries its holder's record: pid, host, start time, what it is doing.
A second deploy is refused with :class:`~conveyor.errors.DeployConflict` naming
the first — on one laptop, and across a team's runners when the state store is
PostgreSQL (:mod:`conveyor.state`).

The lock dies with its holder — even by ``kill -9``: an ``flock`` on
``<state_dir>/envs/<env>/deploy.lock`` that the kernel drops, or a PostgreSQL
advisory lock that the server drops with the holder's session — so a dead
holder's lock is free at once, with no race between two processes taking over
a stale lock. The holder record stays until a clean release removes it: a new
holder that finds a record of a dead process knows that deployment was
interrupted (:attr:`EnvironmentLock.taken_over`) and can write that to the
ledger. The holder keeps its record current while it works
(:meth:`EnvironmentLock.update`: the candidate's weight, since when), so
``conveyor status`` — from any runner sharing the store — shows a rollout in
progress, or one left behind by a killed deploy
(:meth:`EnvironmentLock.interrupted`), with its weight, its start and the
command that ran it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from conveyor.errors import ConveyorError, DeployConflict, LockBusy, OperationError
from conveyor.state import HeldLock, LocalStore, StateStore


def deploy_lock_name(environment: str) -> str:
    return f"envs/{environment}/deploy"


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


def _parse_holder(record: dict[str, Any] | None, environment: str) -> LockHolder | None:
    if not record:
        return None
    try:
        return LockHolder(**record)
    except TypeError:
        return LockHolder(0, "?", "?", environment, "unknown (unreadable lock record)")


class EnvironmentLock:
    """Context manager holding the deploy lock of one environment.

    ``where`` is the project's state store (the lock ``envs/<env>/deploy``), or
    the path of a lock file in a local folder (``…/deploy.lock``).
    """

    def __init__(
        self,
        where: Path | StateStore,
        environment: str,
        action: str,
        *,
        version: str | None = None,
        strategy: str | None = None,
    ) -> None:
        if isinstance(where, str | os.PathLike):
            path = Path(where)
            self.store: StateStore = LocalStore(path.parent)
            self.name = path.name.removesuffix(".lock")
        else:
            self.store = where
            self.name = deploy_lock_name(environment)
        self.environment = environment
        self.action = action
        self.version = version
        self.strategy = strategy
        self.taken_over: LockHolder | None = None  # set by acquire: an interrupted holder's record
        self._held: HeldLock | None = None
        self._me = LockHolder(0, "", "", environment, action)

    def holder(self) -> LockHolder | None:
        """The recorded holder, live or dead (None when there is no record)."""
        return _parse_holder(self.store.lock_state(self.name).record, self.environment)

    def interrupted(self) -> LockHolder | None:
        """The record a killed holder left behind (the lock is free, the record is not), else None."""
        state = self.store.lock_state(self.name)
        return None if state.held else _parse_holder(state.record, self.environment)

    def probe(self) -> LockHolder | None:
        """The live holder, or None when nobody holds the lock (read-only: takes nothing)."""
        state = self.store.lock_state(self.name)
        if not state.held:
            return None
        return _parse_holder(state.record, self.environment) or LockHolder(
            0, "?", "?", self.environment, "unknown (no record yet)"
        )

    def acquire(self) -> None:
        me = LockHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            environment=self.environment,
            action=self.action,
            version=self.version,
            strategy=self.strategy,
        )
        try:
            held = self.store.lock(self.name, record=asdict(me))
        except LockBusy as busy:
            holder = _parse_holder(busy.record, self.environment)
            who = holder.describe() if holder else "a process that has not yet written its name"
            raise DeployConflict(
                f"environment {self.environment!r} is locked by another deployment: {who}; "
                "wait for it to finish",
                record=busy.record,
                environment=self.environment,
                holder_pid=holder.pid if holder else None,
                holder_host=holder.host if holder else None,
                lock=self.name,
                store=self.store.location,
            ) from None
        # a record left behind: its holder died without releasing
        self.taken_over = _parse_holder(held.left_behind, self.environment)
        self._held = held
        self._me = me

    def _write(self, holder: LockHolder) -> None:
        if self._held is None:
            raise OperationError(f"the lock {self.name!r} is not held: acquire it first")
        self._held.update(asdict(holder))
        self._me = holder

    def confirm_held(self) -> None:
        """Rewrite the record through the lock itself: with PostgreSQL, through the session that holds
        the lock, so a lock lost with its session (the database restarted while this process worked)
        is a StateStoreError here, before anything else is changed — not a second deploy running
        beside this one. Called right before a rollout's switch."""
        self._write(self._me)

    def update(self, **changes: object) -> None:
        """Rewrite the held record with ``changes`` (command, stable, weight, weight_since)."""
        self._write(replace(self._me, **changes))  # type: ignore[arg-type]

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.release()  # a clean exit leaves no record behind

    def __enter__(self) -> EnvironmentLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.release()
        else:
            self.release_after_error()

    def release_after_error(self) -> None:
        """Release when leaving on an error: that error is what the caller must see. A release that
        fails too (the state store died) frees the lock anyway — the store drops a dead session's
        lock — and leaves the record, so the next holder finds this work interrupted."""
        with contextlib.suppress(ConveyorError):
            self.release()
