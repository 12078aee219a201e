"""Processes Conveyor starts and must find again, even after ``kill -9`` of whoever started them.

A process is remembered by a small JSON record (pid, its start time, its
role) written next to the environment before anything waits on it. The start
time tells the process apart from a later one that reuses the pid, so a stale
record never makes Conveyor signal a stranger. The next command that finds a
record of a process nobody owns any more (a side server of a killed deploy)
terminates it: that is how "no orphaned servers after kill -9" holds.

psutil does the process work (existence, zombies, start time, terminate, wait)
instead of hand-reading ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

START_TIME_TOLERANCE = 0.05  # seconds: psutil derives the start time from clock ticks


@dataclass(frozen=True)
class ProcessRecord:
    """A process Conveyor started: pid, start time (epoch seconds) and role."""

    pid: int
    create_time: float
    role: str

    @classmethod
    def of(cls, pid: int, role: str) -> ProcessRecord:
        """The record of the running process ``pid`` (start time read now)."""
        try:
            created = psutil.Process(pid).create_time()
        except psutil.Error:
            created = 0.0
        return cls(pid, created, role)

    def process(self) -> psutil.Process | None:
        """The live process this record names; None when it exited or the pid was reused."""
        try:
            proc = psutil.Process(self.pid)
            if self.create_time and abs(proc.create_time() - self.create_time) > START_TIME_TOLERANCE:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(psutil.Error):
                    proc.wait(0)  # our own child: collect it
                return None
        except psutil.NoSuchProcess:
            return None
        except psutil.AccessDenied:
            return None
        return proc

    def alive(self) -> bool:
        return self.process() is not None

    def terminate(self, grace: float) -> bool:
        """SIGTERM, wait up to ``grace`` s, then SIGKILL; True when the process was running."""
        proc = self.process()
        if proc is None:
            return False
        return stop_process(proc, grace)


def stop_process(proc: psutil.Process, grace: float) -> bool:
    """SIGTERM ``proc``, wait up to ``grace`` s, then SIGKILL and wait; True when it was running."""
    try:
        proc.terminate()
        proc.wait(grace)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
            proc.wait(grace)
    return True


def write_record(path: Path, record: ProcessRecord) -> None:
    """Write ``record`` to ``path`` atomically (a reader never sees half a record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    tmp.replace(path)


def read_record(path: Path) -> ProcessRecord | None:
    """The record at ``path``; None when absent or unreadable."""
    try:
        data = json.loads(path.read_text())
        return ProcessRecord(int(data["pid"]), float(data["create_time"]), str(data["role"]))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        return None


def reap_orphan(path: Path, grace: float = 5.0) -> ProcessRecord | None:
    """Terminate the process recorded at ``path`` if it still runs; remove the record.

    Returns the record of a process that was still running (an orphan), else None.
    """
    record = read_record(path)
    stopped = record is not None and record.terminate(grace)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return record if stopped else None
