"""What a training run depends on: the data's fingerprint, the code version, the parameters.

All three are cheap to compute (no MLflow import): the data fingerprint is
the MD5 of the file bytes — the very hash DVC records in ``<file>.dvc`` — so
a DVC-tracked file is recognised as such without running DVC, and a file
changed since ``dvc add`` is fingerprinted by its real content.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conveyor import __version__
from conveyor.errors import InputError

GIT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DataFingerprint:
    path: str
    md5: str
    dvc_tracked: bool  # True when the md5 equals the one recorded in ``<path>.dvc``

    @property
    def value(self) -> str:
        return f"md5:{self.md5}"


def _file_md5(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def _outs_md5(dvc_file: Path) -> str | None:
    """The md5 of the (single) output recorded in a ``.dvc`` file (``<hex>.dir`` for a folder)."""
    try:
        outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or []
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    for out in outs:
        md5 = out.get("md5") if isinstance(out, dict) else None
        if md5:
            return str(md5)
    return None


def _dir_manifest_md5(folder_md5: str, start: Path, relpath: str) -> str | None:
    """The md5 of ``relpath`` in the manifest of a DVC-tracked folder, read from the DVC cache.

    DVC keeps a folder's listing as ``<md5>.dir`` (JSON ``[{"md5", "relpath"}, …]``) in
    ``.dvc/cache/files/md5/`` (DVC 3; ``.dvc/cache/`` before). Reading that one JSON file
    is what ``dvc status`` would do, without importing DVC (seconds) on every ``train``.
    """
    digest = folder_md5.removesuffix(".dir")
    for repo in (start, *start.parents):
        if not (repo / ".dvc").is_dir():
            continue
        for cache in (repo / ".dvc" / "cache" / "files" / "md5", repo / ".dvc" / "cache"):
            manifest = cache / digest[:2] / f"{digest[2:]}.dir"
            try:
                entries = json.loads(manifest.read_text())
            except (OSError, ValueError):
                continue
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and entry.get("relpath") == relpath:
                    return str(entry.get("md5") or "") or None
            return None
        return None
    return None


def dvc_file(path: Path) -> Path | None:
    """The ``.dvc`` file that tracks ``path`` (its own, or its tracked folder's), if any."""
    for candidate in (path, *path.parents):
        if not candidate.name:
            break
        dvc = candidate.with_name(candidate.name + ".dvc")
        if dvc.is_file():
            return dvc
        if (candidate / ".dvc").is_dir():
            break
    return None


def _dvc_md5(path: Path) -> str | None:
    """The md5 DVC recorded for ``path``: in ``<path>.dvc``, or in the manifest of the tracked
    folder that holds it (``dvc add data/raw`` → ``data/raw.dvc``, as ``conveyor init`` does)."""
    own = path.with_name(path.name + ".dvc")
    if own.is_file():
        md5 = _outs_md5(own)
        return md5.removesuffix(".dir") if md5 else None
    for folder in path.parents:
        if not folder.name:  # the filesystem root: no folder above it to be tracked
            return None
        dvc_file = folder.with_name(folder.name + ".dvc")
        if dvc_file.is_file():
            md5 = _outs_md5(dvc_file)
            if not md5 or not md5.endswith(".dir"):
                return None
            return _dir_manifest_md5(md5, folder, path.relative_to(folder).as_posix())
        if (folder / ".dvc").is_dir():
            return None  # reached the DVC repository's root
    return None


def data_fingerprint(path: Path) -> DataFingerprint:
    """MD5 of a data file (or, for a folder, of its files' names and MD5s)."""
    if path.is_file():
        md5 = _file_md5(path)
    elif path.is_dir():
        outer = hashlib.md5()  # noqa: S324  (a content fingerprint, not security)
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            outer.update(f"{f.relative_to(path).as_posix()}\0{_file_md5(f)}\n".encode())
        md5 = outer.hexdigest()
    else:
        raise InputError(f"{path}: no such file", path=str(path))
    recorded = _dvc_md5(path)
    return DataFingerprint(path=str(path), md5=md5, dvc_tracked=recorded == md5 and path.is_file())


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_commit(root: Path) -> str:
    """The project's commit, ``+dirty-<hash>`` when tracked files have uncommitted changes.

    "" outside a git repository. The dirty suffix hashes ``git diff HEAD`` so
    that two runs on the same uncommitted edit still match.
    """
    head = _git(root, "rev-parse", "HEAD")
    if head is None:
        return ""
    commit = head.strip()
    diff = _git(root, "diff", "HEAD", "--no-ext-diff", "--", ".", ":(exclude).conveyor")
    if diff:
        commit += "+dirty-" + hashlib.sha256(diff.encode()).hexdigest()[:12]
    return commit


def canonical_hash(value: Any) -> str:
    """sha256 of a JSON-able value with sorted keys (stable across runs and machines)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def code_version(root: Path) -> dict[str, str]:
    return {"conveyor": __version__, "git_commit": git_commit(root)}
