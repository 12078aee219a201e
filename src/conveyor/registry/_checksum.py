"""The sha256 of a model's files, and the check that refuses a tampered artifact."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conveyor.errors import InputError, IntegrityError

CHUNK = 1 << 20


def directory_sha256(directory: Path) -> str:
    """One digest over every file below ``directory``: sorted relative paths and their contents.

    Renaming, adding, removing or changing any file changes the digest.
    """
    if not directory.is_dir():
        raise InputError(f"{directory}: model directory not found", path=str(directory))
    outer = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        with path.open("rb") as fh:
            inner = hashlib.file_digest(fh, "sha256").hexdigest()
        outer.update(f"{path.relative_to(directory).as_posix()}\0{inner}\n".encode())
    return outer.hexdigest()


def verify_sha256(directory: Path, expected: str, *, what: str) -> None:
    """Raise :class:`IntegrityError` unless the files below ``directory`` hash to ``expected``."""
    if not expected:
        raise IntegrityError(f"{what}: no registered sha256 to verify against; refusing to load")
    actual = directory_sha256(directory)
    if actual != expected:
        raise IntegrityError(
            f"{what}: checksum mismatch — the files in {directory} hash to {actual[:12]}…, "
            f"the registered sha256 is {expected[:12]}…; the artifact was changed after "
            "registration, refusing to load it",
            path=str(directory),
            expected=expected,
            actual=actual,
        )
