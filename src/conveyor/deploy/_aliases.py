"""Registry aliases that follow the ledger: set after the traffic switch, idempotently, with retries.

The traffic switch is what users feel; the registry aliases (``production``,
``staging``, ``previous``) are bookkeeping that MLflow may take seconds to
accept. So a rollback switches traffic, writes its ledger line and returns,
and a detached ``conveyor sync-aliases`` process (:func:`spawn_alias_sync`)
brings the aliases to what the ledger says (:func:`sync_aliases`): each alias
is set only when it differs (running it twice changes nothing), a failure is
retried with a doubling wait, and the outcome is one ``aliases`` ledger line
(``ok`` or ``failed`` with the registry's error). Two syncs of one environment
take turns (the state store's lock ``envs/<env>/aliases``, shared by a team's
runners) and each reads the ledger afresh, so the last switch
always wins.

At most one detached sync waits its turn per environment. A waiting sync reads
the ledger only once it holds the lock, so it covers every switch written before
that moment: a rollback that finds one waiting (the ``aliases-queued`` lock is
held) spawns none, and a sync that starts while another waits exits at once.
Without this, back-to-back rollbacks piled up one MLflow-importing process each,
which competed for the CPU with the next rollback and slowed it (seen in
``benchmarks/rollback.py``: 0 to 6 syncs running, each rollback slower).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from conveyor.deploy._ledger import Ledger, LedgerEntry
from conveyor.deploy._versions import alias_version, set_alias
from conveyor.errors import ConveyorError, LockBusy
from conveyor.project import Project
from conveyor.state import open_store
from conveyor.telemetry import TELEMETRY_OPT_OUT

ALIAS_ATTEMPTS = 5
FIRST_RETRY_SECONDS = 1.0  # then 2, 4, 8 s: about 15 s of MLflow trouble is ridden out
ALIAS_LOCK_WAIT_SECONDS = 120.0  # another sync of this environment runs: about 15 s of retries, then ours
PRODUCTION = "production"
PREVIOUS_ALIAS = "previous"


def sync_aliases(
    project: Project,
    env: str,
    *,
    attempts: int = ALIAS_ATTEMPTS,
    first_retry: float = FIRST_RETRY_SECONDS,
    queue: bool = False,
) -> LedgerEntry | None:
    """Set ``env``'s aliases to the ledger's versions; the ``aliases`` ledger entry (None: never
    deployed, or — with ``queue`` — another sync already waits its turn and will do it)."""
    ledger = Ledger.of(project)
    store = open_store(project)
    queued = None
    if queue:
        try:
            queued = store.lock(_queued_name(env))
        except LockBusy:
            return None  # the waiting sync reads the ledger after this switch was written
    with store.lock(f"envs/{env}/aliases", wait=ALIAS_LOCK_WAIT_SECONDS):
        if queued is not None:
            queued.release()  # from here on the ledger is read: a later switch needs a new sync
        delay, problem = first_retry, ""
        for attempt in range(1, attempts + 1):
            serving = ledger.serving(env)
            if serving is None:
                return None
            wanted = {env: serving.primary}
            if env == PRODUCTION and serving.previous is not None:
                wanted[PREVIOUS_ALIAS] = serving.previous
            try:
                changed = {a: v for a, v in wanted.items() if alias_version(project, a) != v}
                for alias, version in changed.items():
                    set_alias(project, alias, version)
            except ConveyorError as exc:  # the registry converts MLflow's errors to ServiceError
                problem = str(exc)[:300]
                if attempt < attempts:
                    time.sleep(delay)
                    delay *= 2
                continue
            said = ", ".join(f"{a} → {v}" for a, v in changed.items()) or "already in place"
            entry = LedgerEntry(
                env, "aliases", "ok", serving.primary, None, f"registry aliases: {said}",
                details={"attempts": attempt, "set": changed},
            )  # fmt: skip
            return ledger.append(entry)
        entry = LedgerEntry(
            env, "aliases", "failed", serving.primary if serving else None, None,
            f"registry aliases not updated after {attempts} attempts ({problem}); "
            "traffic is not affected; the next deploy or rollback retries",
            details={"attempts": attempts},
        )  # fmt: skip
        return ledger.append(entry)


def _queued_name(env: str) -> str:
    """The state store's lock held by the one detached sync waiting for its turn (module docstring)."""
    return f"envs/{env}/aliases-queued"


def spawn_alias_sync(project: Project, env: str) -> int | None:
    """Run :func:`sync_aliases` in a detached process (``conveyor sync-aliases``); its pid, or None
    when a sync already waits its turn (it will read the ledger, this switch included)."""
    if open_store(project).lock_state(_queued_name(env)).held:
        return None
    command = [sys.executable, "-m", "conveyor", "--project", str(project.root), "sync-aliases", "--env", env]
    log = project.state_dir / "envs" / env / "aliases.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=project.root, env={**os.environ, **TELEMETRY_OPT_OUT}, start_new_session=True,
        )  # fmt: skip
    return process.pid
