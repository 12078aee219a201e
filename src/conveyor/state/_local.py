"""The local folder: Conveyor's state as files under the project's ``.conveyor/`` (one laptop).

- A log ``name`` is the JSON Lines file ``<root>/<name>.jsonl``, never rewritten:
  a record is one ``write`` of one line, ``fsync``-ed, while the writer holds
  the log's file lock, so concurrent writers never interleave; a crash can at
  most leave a torn last line, which readers skip and the next append closes.
  A record's id is its line number.
- A document ``key`` is the JSON file ``<root>/<key>.json``, replaced atomically
  (temporary file + ``os.replace``); its version is a digest of its bytes, and a
  compare-and-set runs under the document's file lock.
- A lock ``name`` is ``<root>/<name>.lock``, taken with ``flock`` through the
  ``filelock`` package (the kernel drops it when its process dies, even by
  ``kill -9``); its record is ``<root>/<name>.lock.json``, which a clean
  release removes and a dead holder leaves behind.

The file locks of logs and documents live under ``<root>/locks/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from filelock import FileLock, Timeout

from conveyor.errors import InputError, LockBusy, OperationError, StateConflict
from conveyor.state._types import ANY, Document, Expected, LockState, LogRecord, check_name, to_json

LOCKS_DIRNAME = "locks"


def _file_lock(path: Path) -> FileLock:
    # preserve_lock_file: a real flock only (no "soft" lock file that a killed holder would leave held)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path), preserve_lock_file=True)


def _version(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def _write_atomic(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _encode(data: Mapping[str, Any]) -> bytes:
    return to_json(data, indent=2).encode()  # keys keep their order


def _read_object(path: Path) -> tuple[dict[str, Any], bytes] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"{path}: cannot read Conveyor's state: {exc.strerror}", path=str(path)) from exc
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: Conveyor's state is not valid JSON; delete the file to reset it", path=str(path)
        ) from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: Conveyor's state must be a JSON object", path=str(path))
    return data, raw


# Held locks stay held until released or until the process ends, even when the caller drops the
# object: a lock is not released by the garbage collector.
_HELD: set[LocalLock] = set()


class LocalLock:
    """A held lock of the local folder (see the module docstring)."""

    def __init__(self, store: LocalStore, name: str, guard: FileLock, left_behind: dict[str, Any] | None):
        self.name = name
        self.left_behind = left_behind
        self._store = store
        self._guard: FileLock | None = guard

    def update(self, record: Mapping[str, Any]) -> None:
        if self._guard is None:
            raise OperationError(f"the lock {self.name!r} is not held: take it first")
        _write_atomic(self._store._record_path(self.name), _encode(record))

    def release(self) -> None:
        _HELD.discard(self)
        guard, self._guard = self._guard, None
        if guard is None:
            return
        try:
            self._store._record_path(self.name).unlink(missing_ok=True)  # a clean exit leaves no record
        finally:
            guard.release()

    def __enter__(self) -> LocalLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class LocalStore:
    """Conveyor's state in a folder (the project's ``.conveyor/``)."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- paths ---------------------------------------------------------------------------
    def log_path(self, log: str) -> Path:
        return self.root / f"{check_name(log)}.jsonl"

    def document_path(self, key: str) -> Path:
        return self.root / f"{check_name(key)}.json"

    def _guard_path(self, kind: str, name: str) -> Path:
        return self.root / LOCKS_DIRNAME / kind / f"{check_name(name)}.lock"

    def _lock_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.lock"

    def _record_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.lock.json"

    # -- logs --------------------------------------------------------------------------
    def append(self, log: str, data: Mapping[str, Any]) -> LogRecord:
        path = self.log_path(log)
        line = (to_json(data) + "\n").encode()
        with _file_lock(self._guard_path("logs", log)):
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OperationError(f"cannot open the log {path}: {exc.strerror}") from exc
            try:
                existing = path.read_bytes()
                # A torn previous line (a crash mid-write) must not swallow this one.
                if existing and not existing.endswith(b"\n"):
                    line = b"\n" + line
                os.write(fd, line)
                os.fsync(fd)
            except OSError as exc:
                raise OperationError(f"cannot write the log {path}: {exc.strerror}") from exc
            finally:
                os.close(fd)
        return LogRecord(existing.count(b"\n") + line.count(b"\n"), json.loads(line))

    def read(self, log: str, *, after: int = 0) -> list[LogRecord]:
        return list(self._records(self.log_path(log), after))

    @staticmethod
    def _records(path: Path, after: int) -> Iterator[LogRecord]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise InputError(f"cannot read the log: {exc.strerror}", path=str(path)) from exc
        for number, line in enumerate(raw.split(b"\n"), start=1):
            if number <= after or not line.strip():
                continue
            try:
                data = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # a torn line
            if isinstance(data, dict):
                yield LogRecord(number, data)

    # -- documents -----------------------------------------------------------------------
    def get(self, key: str) -> Document | None:
        found = _read_object(self.document_path(key))
        return None if found is None else Document(key, found[0], _version(found[1]))

    def _current_version(self, path: Path) -> str | None:
        try:
            return _version(path.read_bytes())
        except FileNotFoundError:
            return None

    def put(self, key: str, data: Mapping[str, Any], *, expected: Expected = ANY) -> Document:
        path = self.document_path(key)
        raw = _encode(data)
        if expected is ANY:
            _write_atomic(path, raw)
        else:
            with _file_lock(self._guard_path("documents", key)):
                self._check(key, path, expected)
                _write_atomic(path, raw)
        return Document(key, json.loads(raw), _version(raw))

    def _check(self, key: str, path: Path, expected: Expected) -> None:
        current = self._current_version(path)
        if expected is not ANY and current != expected:
            raise StateConflict(
                f"state document {key!r} changed since it was read; read it again and retry",
                key=key,
            )

    def delete(self, key: str, *, expected: Expected = ANY) -> bool:
        path = self.document_path(key)
        with _file_lock(self._guard_path("documents", key)):
            self._check(key, path, expected)
            try:
                path.unlink()
            except FileNotFoundError:
                return False
        return True

    def move(self, key: str, new_key: str) -> bool:
        source, target = self.document_path(key), self.document_path(new_key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            source.replace(target)
        except FileNotFoundError:
            return False
        return True

    def keys(self, prefix: str) -> list[str]:
        folder = self.root / check_name(prefix)
        if not folder.is_dir():
            return []
        found = (p for p in folder.glob("*.json") if not p.name.endswith(".lock.json"))  # lock records
        return sorted(f"{prefix}/{p.stem}" for p in found)

    # -- locks ---------------------------------------------------------------------------
    def lock(self, name: str, *, wait: float = 0.0, record: Mapping[str, Any] | None = None) -> LocalLock:
        guard = _file_lock(self._lock_path(name))
        try:
            guard.acquire(timeout=max(0.0, wait))
        except Timeout:
            found = self._read_record(name)
            raise LockBusy(f"the lock {name!r} is held by another process", record=found, lock=name) from None
        try:
            held = LocalLock(self, name, guard, self._read_record(name))
            if record is not None:
                held.update(record)
            _HELD.add(held)
        except BaseException:
            guard.release()
            raise
        return held

    def _read_record(self, name: str) -> dict[str, Any] | None:
        path = self._record_path(name)
        try:
            found = _read_object(path)
        except InputError:
            return {"unreadable": str(path)}
        return None if found is None else found[0]

    def lock_state(self, name: str) -> LockState:
        path = self._lock_path(name)
        if not path.exists():
            return LockState(name, False, self._read_record(name))
        guard = _file_lock(path)
        try:
            guard.acquire(timeout=0)
        except Timeout:
            return LockState(name, True, self._read_record(name))
        with contextlib.suppress(OSError):
            guard.release()
        return LockState(name, False, self._read_record(name))
