"""conveyor.state's public names are pinned; importing it does not import SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys

import conveyor.state


def test_public_names_are_pinned():
    assert sorted(conveyor.state.__all__) == sorted(
        [
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
    )
    for name in conveyor.state.__all__:
        assert hasattr(conveyor.state, name)


def test_a_laptop_command_does_not_import_sqlalchemy():
    code = (
        "import sys, conveyor.state, conveyor.deploy; conveyor.deploy.Ledger; "
        "print('sqlalchemy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_both_stores_satisfy_the_protocol(tmp_path):
    from conveyor.state import LocalStore, PostgresStore, StateStore

    assert isinstance(LocalStore(tmp_path), StateStore)
    assert isinstance(PostgresStore("postgresql://u:p@127.0.0.1:1/db"), StateStore)  # no connection yet
