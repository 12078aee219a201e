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
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from conveyor.deploy._ledger import Ledger, LedgerEntry
from conveyor.deploy._versions import alias_version, set_alias
from conveyor.errors import ConveyorError
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
) -> LedgerEntry | None:
    """Set ``env``'s aliases to the ledger's versions; the ``aliases`` ledger entry (None: never deployed)."""
    ledger = Ledger.of(project)
    with open_store(project).lock(f"envs/{env}/aliases", wait=ALIAS_LOCK_WAIT_SECONDS):
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


def spawn_alias_sync(project: Project, env: str) -> int:
    """Run :func:`sync_aliases` in a detached process (``conveyor sync-aliases``); its pid."""
    command = [sys.executable, "-m", "conveyor", "--project", str(project.root), "sync-aliases", "--env", env]
    log = project.state_dir / "envs" / env / "aliases.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=project.root, env={**os.environ, **TELEMETRY_OPT_OUT}, start_new_session=True,
        )  # fmt: skip
    return process.pid
