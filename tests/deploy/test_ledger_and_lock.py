"""The ledger is append-only and survives torn lines; the lock names its holder and dies with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
from filelock import FileLock

from conveyor.deploy import (
    EnvironmentLock,
    Ledger,
    LedgerEntry,
    serving_versions,
    spawn_alias_sync,
    sync_aliases,
)
from conveyor.errors import DeployConflict
from conveyor.project import Project


def test_ledger_appends_and_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    ledger = Ledger(tmp_path / "ledger.jsonl")
    assert ledger.entries() == []
    written = ledger.append(
        LedgerEntry("staging", "deploy", "ok", version="3", strategy="direct", reason="r")
    )
    ledger.append(LedgerEntry("production", "rollback", "ok", version="2"))
    assert written.who == "octocat"
    assert written.time
    entries = ledger.entries()
    assert [(e.environment, e.action, e.version) for e in entries] == [
        ("staging", "deploy", "3"),
        ("production", "rollback", "2"),
    ]
    assert ledger.entries("production")[0].who == "octocat"
    assert len(ledger.entries(limit=1)) == 1


def test_ledger_tolerates_a_torn_last_line(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.append(LedgerEntry("staging", "deploy", "ok", who="a"))
    with path.open("ab") as fh:
        fh.write(b'{"environment": "staging", "act')  # a crash mid-write
    assert len(ledger.entries()) == 1
    ledger.append(LedgerEntry("staging", "deploy", "ok", who="b"))
    assert [e.who for e in ledger.entries()] == ["a", "b"]
    assert path.read_bytes().startswith(b'{"action": "deploy"')  # never rewritten


def test_ledger_concurrent_writers_never_interleave(tmp_path):
    path = tmp_path / "ledger.jsonl"
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from conveyor.deploy import Ledger, LedgerEntry
        ledger = Ledger(Path({str(path)!r}))
        for i in range(100):
            ledger.append(LedgerEntry("production", "deploy", "ok", version=sys.argv[1] + "-" + str(i),
                                      who="w", reason="x" * 2000))
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(k)]) for k in range(4)]
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    lines = path.read_text().splitlines()
    assert len(lines) == 400
    assert all(json.loads(line)["reason"] == "x" * 2000 for line in lines)


def _lock(path: Path, action: str = "deploy") -> EnvironmentLock:
    return EnvironmentLock(path, "production", action, version="7", strategy="canary")


def test_second_deploy_is_refused_naming_the_first(tmp_path):
    path = tmp_path / "deploy.lock"
    with _lock(path) as first:
        assert first.taken_over is None
        with pytest.raises(DeployConflict, match=rf"deploy of version 7 \(canary\) by pid {os.getpid()}"):
            _lock(path).acquire()
    with _lock(path) as again:  # released cleanly: free, and no interrupted record
        assert again.taken_over is None


def test_lock_of_a_killed_holder_is_taken_over(tmp_path):
    path = tmp_path / "deploy.lock"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from conveyor.deploy import EnvironmentLock
        EnvironmentLock(Path({str(path)!r}), "production", "deploy", version="9").acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(DeployConflict, match=f"pid {proc.pid}"):
            _lock(path).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _lock(path).interrupted().pid == proc.pid  # what `conveyor status` shows
        lock = _lock(path)
        lock.acquire()
        assert lock.taken_over is not None
        assert lock.taken_over.pid == proc.pid
        assert lock.taken_over.version == "9"
        lock.release()
    finally:
        proc.kill()
        proc.wait()


def _entry(action: str, outcome: str, version: str | None, **details: object) -> LedgerEntry:
    return LedgerEntry("production", action, outcome, version, details=dict(details))


def test_the_ledger_says_what_should_serve_after_each_kind_of_line():
    assert serving_versions([]) is None
    history = [
        _entry("deploy", "ok", "1", previous=None),
        _entry("deploy", "failed", "2"),  # a failed attempt changes nothing
        _entry("deploy", "ok", "2", previous="1"),
        _entry("aliases", "ok", "2"),
        _entry("canary-step", "ok", "3"),
        _entry("deploy", "rolled-back", "3"),
        _entry("interrupted", "interrupted", "3"),
    ]
    found = serving_versions(history)
    assert (found.primary, found.previous) == ("2", "1")
    history.append(_entry("rollback", "ok", "1", previous="2"))
    found = serving_versions(history)
    assert (found.primary, found.previous) == ("1", "2")
    history.append(_entry("ab-conclude", "promoted", "4"))  # an A/B winner: the control is previous
    found = serving_versions(history)
    assert (found.primary, found.previous) == ("4", "1")
    history.append(_entry("rollback", "ok", "4", previous="1"))  # a canary aborted: nothing switched
    found = serving_versions(history)
    assert (found.primary, found.previous) == ("4", "1")


def test_the_lock_record_follows_the_rollout_and_outlives_a_killed_holder(tmp_path):
    path = tmp_path / "deploy.lock"
    lock = _lock(path)
    lock.acquire()
    lock.update(command="conveyor deploy --env production", stable="6", weight=10.0, weight_since="t0")
    seen = _lock(path)
    assert seen.probe() == seen.holder()
    assert (seen.holder().weight, seen.holder().stable, seen.holder().command) == (
        10.0, "6", "conveyor deploy --env production",
    )  # fmt: skip
    assert seen.interrupted() is None  # held: in progress, not interrupted
    lock.release()
    assert seen.holder() is None  # a clean release leaves no record
    assert seen.interrupted() is None


def test_one_waiting_alias_sync_absorbs_the_rollbacks_behind_it(make_project):
    """Back-to-back rollbacks leave one detached sync waiting, not one each (they competed for the CPU)."""
    project = Project.load(make_project("project: {name: shop}\n"))
    pid = spawn_alias_sync(project, "production")  # nothing waits: a sync is spawned ...
    assert pid is not None
    assert psutil.Process(pid).wait(120) == 0  # ... and finds nothing deployed
    ledger = Ledger.of(project)
    ledger.append(_entry("rollback", "ok", "1", previous="2"))
    waiting = FileLock(str(project.state_dir / "envs" / "production" / "aliases-queued.lock"))
    waiting.acquire(timeout=0)  # a sync waits its turn: it will read the ledger, this line included
    try:
        assert spawn_alias_sync(project, "production") is None  # no second process
        assert sync_aliases(project, "production", queue=True) is None  # a late one leaves at once
    finally:
        waiting.release()
    assert [e.action for e in ledger.entries()] == ["rollback"]  # the registry was not touched
