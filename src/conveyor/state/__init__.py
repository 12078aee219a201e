"""Conveyor's own state behind one small interface, in a local folder or in PostgreSQL.

The ledger, the deployment locks (with the rollout progress they carry), A/B
plans, monitoring state and cooldowns, the alert outbox, stage results and
the reuse index all live in a :class:`StateStore`: append-only *logs*,
versioned JSON *documents* with compare-and-set, and named *locks* that die
with their holder. Two implementations: :class:`LocalStore` (the project's
``.conveyor/`` folder, the default for one laptop) and :class:`PostgresStore`
(one database shared by a team's runners and laptops). :func:`open_store`
picks one from ``state.uri_env``.
"""

from typing import TYPE_CHECKING, Any

from conveyor.state._local import LocalStore
from conveyor.state._open import StoreChoice, local_store, open_store, shared_store, store_choice
from conveyor.state._types import (
    ANY,
    Document,
    HeldLock,
    LockState,
    LogRecord,
    StateStore,
    check_name,
)

if TYPE_CHECKING:
    from conveyor.state._postgres import PostgresStore, lock_key


def __getattr__(name: str) -> Any:
    # SQLAlchemy is imported only by a process that uses PostgreSQL (commands start faster without it)
    if name in ("PostgresStore", "lock_key"):
        from conveyor.state import _postgres

        return getattr(_postgres, name)
    raise AttributeError(f"module 'conveyor.state' has no attribute {name!r}")


__all__ = [
    "ANY",
    "Document",
    "HeldLock",
    "LocalStore",
    "LockState",
    "LogRecord",
    "PostgresStore",
    "StateStore",
    "StoreChoice",
    "check_name",
    "local_store",
    "lock_key",
    "open_store",
    "shared_store",
    "store_choice",
]
