"""The state store's contract: what Conveyor keeps between commands, and the typed results.

Conveyor's own state has three shapes, and a store offers exactly these:

- **logs** — append-only sequences of JSON objects (the deployment ledger, the
  stage results' history). :meth:`StateStore.append` gives each record an id
  that increases in the order the appends completed, so a reader that has seen
  id ``n`` finds every later record with ``read(log, after=n)``; concurrent
  appends from many processes lose nothing and never interleave.
- **documents** — one JSON object per key (an A/B plan, the monitoring check
  state and cooldowns, the alert outbox, the latest stage results, the reuse
  index). :meth:`StateStore.put` replaces a document atomically; with
  ``expected`` it is a compare-and-set on the document's version (``None``:
  the key must not exist yet), so two writers never silently overwrite each
  other — the loser gets :class:`~conveyor.errors.StateConflict`.
- **locks** — named, exclusive, held by a live process and released by the
  system when that process dies (even by ``kill -9``). Each lock carries the
  holder's *record* (who, what, progress): a record that outlives its holder
  tells the next holder that work was interrupted (:attr:`HeldLock.left_behind`).

Keys and log and lock names are ``/``-separated paths of plain words
(``envs/production/ab``): :func:`check_name` refuses anything else, so a local
folder can map them to files.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, Final, Literal, Protocol, runtime_checkable

from conveyor.errors import UsageError

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*")


class _Any(Enum):
    """The type of :data:`ANY`."""

    ANY = "any"


ANY: Final = _Any.ANY  # ``put(..., expected=ANY)``: replace whatever is there (the default)
Expected = str | None | Literal[_Any.ANY]


def check_name(name: str) -> str:
    """``name`` when it is a ``/``-separated path of plain words, else a UsageError."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise UsageError(f"state key {name!r}: use words of letters, digits, '_', '-', '.' separated by '/'")
    return name


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def to_json(data: Mapping[str, Any], *, indent: int | None = None) -> str:
    """The JSON text both stores write: keys in their order, NaN and ±inf as ``null``
    (JSON has no such numbers; PostgreSQL refuses them), other objects as their ``str``."""
    return json.dumps(_finite(json.loads(json.dumps(dict(data), default=str))), indent=indent)


@dataclass(frozen=True)
class LogRecord:
    """One record of a log: its id (increasing in append order) and its JSON object."""

    id: int
    data: dict[str, Any]


@dataclass(frozen=True)
class Document:
    """One document: its key, its JSON object and an opaque version for compare-and-set."""

    key: str
    data: dict[str, Any]
    version: str


@dataclass(frozen=True)
class LockState:
    """A lock as others see it: held by a live process or not, and the record it carries.

    ``held`` and a record: the live holder's record. Not held and a record: the
    record a holder left when it died without releasing (its work was interrupted).
    """

    name: str
    held: bool
    record: dict[str, Any] | None


@runtime_checkable
class HeldLock(Protocol):
    """A lock this process holds; released by :meth:`release`, by leaving ``with``, or by dying."""

    name: str
    left_behind: dict[str, Any] | None  # the record of a holder that died without releasing

    def update(self, record: Mapping[str, Any]) -> None:
        """Replace the held lock's record (what the holder is doing, its progress)."""

    def release(self) -> None:
        """Clear the record and free the lock (a second call does nothing)."""

    def __enter__(self) -> HeldLock: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class StateStore(Protocol):
    """Where Conveyor keeps its state: a local folder or a shared database."""

    kind: str  # "local" or "postgresql"

    @property
    def location(self) -> str:
        """Where the state lives, fit to print (never a password)."""

    # -- logs --------------------------------------------------------------------------
    def append(self, log: str, data: Mapping[str, Any]) -> LogRecord:
        """Append ``data`` to ``log`` durably; the record with its id."""

    def read(self, log: str, *, after: int = 0) -> list[LogRecord]:
        """The records of ``log`` with an id above ``after``, oldest first."""

    # -- documents -----------------------------------------------------------------------
    def get(self, key: str) -> Document | None:
        """The document at ``key``, or None."""

    def put(self, key: str, data: Mapping[str, Any], *, expected: Expected = ANY) -> Document:
        """Write ``data`` at ``key`` atomically; with ``expected``, only over that version."""

    def delete(self, key: str, *, expected: Expected = ANY) -> bool:
        """Remove ``key`` (with ``expected``, only that version); True when something was removed."""

    def move(self, key: str, new_key: str) -> bool:
        """Rename a document (``new_key`` is replaced); True when ``key`` existed."""

    def keys(self, prefix: str) -> list[str]:
        """The keys of the documents directly below ``prefix`` (``results`` → ``results/drift``), sorted."""

    # -- locks ---------------------------------------------------------------------------
    def lock(self, name: str, *, wait: float = 0.0, record: Mapping[str, Any] | None = None) -> HeldLock:
        """Take lock ``name``, waiting up to ``wait`` seconds; :class:`~conveyor.errors.LockBusy` if held."""

    def lock_state(self, name: str) -> LockState:
        """Whether ``name`` is held now and the record it carries (read-only)."""
