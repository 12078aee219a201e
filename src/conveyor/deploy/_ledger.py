"""The deployment ledger: an append-only JSON Lines file, never rewritten.

Every deploy, promotion, rollback, interruption and A/B decision is one line
in ``<state_dir>/ledger.jsonl``: time, who (the CI actor or the git author),
environment, version, strategy, action, outcome and reason. A line is written
with one ``write`` on a descriptor opened with ``O_APPEND`` and then
``fsync``-ed, under an ``flock`` shared by the writers, so concurrent
writers never interleave and a crash can at most leave a torn last line — which the reader skips.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.config import env_flag
from conveyor.errors import InputError, OperationError
from conveyor.project import Project

LEDGER_FILENAME = "ledger.jsonl"
_ACTING: ContextVar[tuple[str, str] | None] = ContextVar("conveyor_ledger_acting", default=None)


@contextmanager
def acting_as(who: str, why: str) -> Iterator[None]:
    """Entries written inside (in this thread or task) are by ``who``, with the operator's ``why``.

    For callers that act for someone else, e.g. ``conveyor ui``'s actions: the same
    deploy functions as the CLI, the ledger naming who asked and why.
    """
    token = _ACTING.set((who, why))
    try:
        yield
    finally:
        _ACTING.reset(token)


@dataclass(frozen=True)
class LedgerEntry:
    environment: str
    action: str  # deploy, promote, rollback, interrupted, ab-start, ab-conclude, canary-step, ...
    outcome: str  # ok, failed, refused, promoted, kept-control, interrupted, ...
    version: str | None = None
    strategy: str | None = None
    reason: str = ""
    who: str = ""
    time: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerEntry:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


SWITCHES = {
    ("deploy", "ok"),
    ("rollback", "ok"),
    ("ab-conclude", "promoted"),
    ("ab-conclude", "kept-control"),
}


@dataclass(frozen=True)
class Serving:
    """What an environment should serve according to the ledger: its primary and previous version."""

    primary: str
    previous: str | None
    since: str  # the time of the switch that made ``primary`` serve


def serving_versions(entries: list[LedgerEntry]) -> Serving | None:
    """The expected versions after ``entries`` (one environment's, oldest first); None if never deployed.

    Only completed switches count (a deploy or rollback that answered ``ok``, a
    concluded A/B test); a failed, refused or interrupted attempt changes nothing.
    """
    found: Serving | None = None
    for entry in entries:
        if (entry.action, entry.outcome) not in SWITCHES or entry.version is None:
            continue
        previous = entry.details.get("previous")
        if entry.action == "ab-conclude" and found is not None:
            previous = found.primary if entry.outcome == "promoted" else found.previous
        if found is not None and found.primary == entry.version and previous is None:
            previous = found.previous  # unchanged: keep what a rollback would return to
        if previous == entry.version:
            previous = None
        found = Serving(str(entry.version), None if previous is None else str(previous), entry.time)
    return found


def current_actor() -> str:
    """Who acts: the CI actor (GITHUB_ACTOR), else the git author, else the OS user."""
    actor = env_flag("GITHUB_ACTOR")
    if actor:
        return actor
    try:
        done = subprocess.run(
            ["git", "config", "user.name"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is not None and done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip()
    return env_flag("USER") or env_flag("USERNAME") or "unknown"


class Ledger:
    """The ledger file of one project."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, project: Project) -> Ledger:
        return cls(project.state_dir / LEDGER_FILENAME)

    def append(self, entry: LedgerEntry) -> LedgerEntry:
        """Append ``entry`` (time and who filled in when empty) durably; return what was written."""
        acting = _ACTING.get()
        reason = f"{entry.reason}; why: {acting[1]}" if acting and acting[1] else entry.reason
        filled = LedgerEntry(
            **{
                **asdict(entry),
                "time": entry.time or datetime.now(UTC).isoformat(timespec="milliseconds"),
                "who": entry.who or (acting[0] if acting else current_actor()),
                "reason": reason,
            }
        )
        line = (json.dumps(asdict(filled), default=str, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OperationError(f"cannot open the ledger {self.path}: {exc.strerror}") from exc
        try:
            # Writers take turns (flock), so the check below never sees another
            # writer's line half-written; a crash releases the lock by itself.
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A torn previous line (a crash mid-write) must not swallow this one.
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        except OSError as exc:
            raise OperationError(f"cannot write the ledger {self.path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        return filled

    def __iter__(self) -> Iterator[LedgerEntry]:
        """Entries oldest first; unreadable lines (a torn last line) are skipped."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise InputError(f"cannot read the ledger: {exc.strerror}", path=str(self.path)) from exc
        for line in raw.splitlines():
            try:
                data = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(data, dict):
                yield LedgerEntry.from_dict(data)

    def entries(self, environment: str | None = None, limit: int | None = None) -> list[LedgerEntry]:
        """The entries (of one environment), oldest first; the last ``limit`` when given."""
        found = [e for e in self if environment is None or e.environment == environment]
        return found[-limit:] if limit else found

    def serving(self, environment: str) -> Serving | None:
        """What ``environment`` should serve (see :func:`serving_versions`)."""
        return serving_versions(self.entries(environment))


def deployed_versions(project: Project) -> dict[str, str]:
    """The primary version each configured environment should serve, for those the ledger has deployed."""
    ledger = Ledger.of(project)
    found: dict[str, str] = {}
    for name in project.settings.deploy.environments:
        serving = ledger.serving(name)
        if serving is not None:
            found[name] = serving.primary
    return found
