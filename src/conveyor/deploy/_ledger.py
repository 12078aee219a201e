"""The deployment ledger: the append-only log ``ledger`` of the project's state store.

Every deploy, promotion, rollback, interruption and A/B decision is one record:
time, who (the CI actor or the git author), environment, version, strategy,
action, outcome and reason. The store keeps it (:mod:`conveyor.state`): in the
local folder, ``<state_dir>/ledger.jsonl``, one line per record, never
rewritten (a crash can at most leave a torn last line, which readers skip);
in PostgreSQL, the rows of ``conveyor_log`` — shared by every runner of a team.
Concurrent writers never interleave and lose nothing in either.
"""

from __future__ import annotations

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
from conveyor.errors import UsageError
from conveyor.project import Project
from conveyor.state import LocalStore, StateStore, open_store

LEDGER_LOG = "ledger"
LEDGER_FILENAME = LEDGER_LOG + ".jsonl"  # in the local folder
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


MAX_REASON = 500


def operator_reason(why: str, *, name: str = "why") -> str:
    """An operator's reason for the ledger, on one line; a UsageError when empty or too long."""
    reason = " ".join(why.split())
    if not reason:
        raise UsageError(f"{name}: give the reason for this action (it goes into the ledger)")
    if len(reason) > MAX_REASON:
        raise UsageError(f"{name}: at most {MAX_REASON} characters")
    return reason


def acting() -> tuple[str, str] | None:
    """``(who, why)`` inside :func:`acting_as`, else None (a request to another process carries them)."""
    return _ACTING.get()


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
    """The ledger of one project, in its state store (or a local ``….jsonl`` file given by path)."""

    def __init__(self, where: Path | StateStore, log: str = LEDGER_LOG) -> None:
        if isinstance(where, str | os.PathLike):
            path = Path(where)
            where, log = LocalStore(path.parent), path.name.removesuffix(".jsonl")
        self.store: StateStore = where
        self.log = log

    @classmethod
    def of(cls, project: Project) -> Ledger:
        return cls(open_store(project))

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
        self.store.append(self.log, dict(sorted(asdict(filled).items())))
        return filled

    def __iter__(self) -> Iterator[LedgerEntry]:
        """Entries oldest first (a torn last line of a local file is skipped)."""
        for record in self.store.read(self.log):
            yield LedgerEntry.from_dict(record.data)

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
