"""The project's code uploaded to the workspace before a Databricks run (``spark.databricks.upload``).

With ``upload: false`` a run trains whatever ``spark.databricks.project_dir``
holds — a Git folder on ``main``, say — not the code of the commit under test.
With ``upload: true`` ``conveyor spark databricks-run`` first uploads the files
Git tracks in the project root (``git ls-files``; data under DVC is not
tracked, so it stays where ``data.source`` says) to
``<project_dir>/code-<digest>`` and runs the command there. The digest is the
first 16 hex characters of a sha256 over the sorted (relative path, bytes)
pairs as they are on disk, uncommitted edits included: the same code gives the
same folder (the train, evaluate and register runs of one workflow job share it
and its ``.conveyor`` state), different code another one.

The calls are the SDK's workspace API: ``workspace.mkdirs``
(``/api/2.0/workspace/mkdirs``), ``workspace.upload`` (a multipart
``/api/2.0/workspace/import``, format ``RAW``: every file stays a file — ``AUTO``
would turn a ``.py`` starting with ``# Databricks notebook source`` into a
notebook without its extension) and ``workspace.download``
(``/api/2.0/workspace/export``) of the marker ``.conveyor-upload.json``, which
is written last: a folder with the marker of its digest is complete and is not
uploaded again; an upload cut half-way has no marker and is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from conveyor.errors import UsageError
from conveyor.spark._databricks_run import _sdk_quiet, workspace_errors

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

# the workspace import API refuses larger content (MAX_NOTEBOOK_SIZE_EXCEEDED; "a limit of 10 MB")
MAX_FILE_BYTES = 10 * 1024 * 1024
MARKER = ".conveyor-upload.json"
WORKSPACE_FUSE = "/Workspace"  # the cluster sees workspace files under /Workspace; the API without it
GIT_SECONDS = 60


@dataclass(frozen=True)
class ProjectCode:
    """The files Git tracks in the project root (relative POSIX path, bytes on disk), sorted."""

    files: tuple[tuple[str, bytes], ...]

    @property
    def digest(self) -> str:
        sha = hashlib.sha256()
        for path, data in self.files:  # length-prefixed: no two file sets hash alike by concatenation
            name = os.fsencode(path)
            sha.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big") + data)
        return sha.hexdigest()[:16]


@dataclass(frozen=True)
class CodeUpload:
    """Where the run finds the project's code: the folder (as the cluster reads it), the digest, the
    number of files, and whether this command uploaded them (False: a complete upload was there)."""

    folder: str
    digest: str
    files: int
    uploaded: bool

    def to_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "digest": self.digest, "files": self.files, "uploaded": self.uploaded}


def project_code(root: Path) -> ProjectCode:
    """The files ``git ls-files`` lists in ``root`` with their bytes on disk; UsageError, one line, when
    ``root`` is not in a Git checkout or a file is over the workspace's import limit."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"],
            cwd=root,
            capture_output=True,
            timeout=GIT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"spark.databricks.upload lists the project's files with git: {exc}") from None
    if listed.returncode != 0:
        raise UsageError(
            f"spark.databricks.upload uploads the files Git tracks, and {root} is not in a Git checkout "
            "(git init and commit it, or set upload: false)"
        )
    files: list[tuple[str, bytes]] = []
    for name in sorted(set(os.fsdecode(listed.stdout).split("\0")) - {""}):
        path = root / name
        if not path.is_file():  # deleted since the last commit, or a submodule: not what the user sees
            continue
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UsageError(
                f"{name} is {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES // (1024 * 1024)} MB a workspace "
                "file may have: keep it out of Git (dvc add it) or set spark.databricks.upload: false"
            )
        files.append((name, path.read_bytes()))  # git's names are POSIX paths
    if not files:
        raise UsageError(f"Git tracks no file in {root}: commit the project before uploading it")
    return ProjectCode(tuple(files))


def _api_path(path: str) -> str:
    """``/Workspace/Shared/shop`` (the cluster's path) → ``/Shared/shop`` (the workspace API's)."""
    return path.removeprefix(WORKSPACE_FUSE) if path.startswith(WORKSPACE_FUSE + "/") else path


def _marker_digest(client: WorkspaceClient, path: str) -> str | None:
    """The digest the folder's marker records; None when there is no readable marker."""
    from databricks.sdk.errors.platform import NotFound

    try:
        with _sdk_quiet():
            data = client.workspace.download(path).read()
    except NotFound:
        return None
    try:
        digest = json.loads(data).get("digest")
    except (ValueError, AttributeError):
        return None
    return digest if isinstance(digest, str) else None


def _write(client: WorkspaceClient, code: ProjectCode, base: str, marker: bytes) -> None:
    from databricks.sdk.service.workspace import ImportFormat

    folders = sorted({str(PurePosixPath(base, name).parent) for name, _ in code.files})
    with _sdk_quiet():
        for folder in folders:  # mkdirs makes the parents too, as mkdir -p
            client.workspace.mkdirs(folder)
        for name, data in [*code.files, (MARKER, marker)]:  # the marker last
            client.workspace.upload(f"{base}/{name}", data, format=ImportFormat.RAW, overwrite=True)


def upload(client: WorkspaceClient, code: ProjectCode, project_dir: str, token: str) -> CodeUpload:
    """``code`` in ``<project_dir>/code-<digest>`` unless its marker is there already."""
    digest = code.digest
    folder = f"{project_dir.rstrip('/')}/code-{digest}"
    base = _api_path(folder)
    with workspace_errors(
        token,
        refused=f"Databricks refused the upload to {folder}",
        permission="the token's user needs write access to spark.databricks.project_dir",
        failed=f"Databricks did not take the upload to {folder}",
        note=" (nothing was submitted; the next run uploads again)",
    ):
        if _marker_digest(client, f"{base}/{MARKER}") == digest:
            return CodeUpload(folder, digest, len(code.files), uploaded=False)
        marker = {
            "digest": digest,
            "files": [name for name, _ in code.files],
            "uploaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _write(client, code, base, json.dumps(marker, indent=1).encode())
    return CodeUpload(folder, digest, len(code.files), uploaded=True)


__all__ = ["MARKER", "MAX_FILE_BYTES", "CodeUpload", "ProjectCode", "project_code", "upload"]
