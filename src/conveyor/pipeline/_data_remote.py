"""The project's DVC remote: the local ``.dvc-remote`` folder (one laptop) or S3 (``data.remote``, a team).

``conveyor init`` sets it when it creates the project; ``conveyor data remote`` sets it later,
from ``data.remote`` in conveyor.yaml, and pushes the tracked data there. With S3 it is the
equivalent of ``dvc remote add -d storage s3://…`` plus ``dvc remote modify storage endpointurl
…`` when ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` names a store other than AWS. No key is
ever written: DVC's S3 client (``dvc-s3``, the ``team`` extra) reads them from the environment.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conveyor.config import s3_endpoint_url
from conveyor.errors import OperationError, UsageError
from conveyor.extensions import require_extra
from conveyor.project import Project
from conveyor.telemetry import disable_telemetry

DVC_REMOTE_NAME = "local"
DVC_REMOTE_DIR = ".dvc-remote"
DVC_S3_REMOTE_NAME = "storage"  # `dvc remote add -d storage s3://…` (data.remote)


@contextlib.contextmanager
def quiet_dvc(root: Path) -> Iterator[Any]:
    """DVC's ``Repo`` class with its output kept off stdout (``--json`` stays clean); a DVC
    failure inside the block becomes one OperationError naming ``root``; DVC not installed (it is
    the ``dvc`` extra), one ExtensionError naming the extra."""
    require_extra("dvc", "dvc", "versioning the data with DVC")
    disable_telemetry()
    sink = io.StringIO()
    # DVC binds its log handlers to the streams of the moment it is imported: import it inside
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        from dvc.exceptions import DvcException
        from dvc.repo import Repo
    dvc_logger = logging.getLogger("dvc")  # its handlers may hold the real stdout
    level = dvc_logger.level
    dvc_logger.setLevel(logging.CRITICAL)  # failures arrive as exceptions
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield Repo
    except DvcException as exc:
        raise OperationError(f"DVC failed in {root}: {exc}") from exc
    finally:
        dvc_logger.setLevel(level)


def set_dvc_remote(repo: Any, root: Path, remote: str | None) -> str:
    """Make ``remote`` (None: the project's ``.dvc-remote`` folder) the repository's default remote."""
    if remote is None:
        from dvc.config_schema import RelPath

        name, section = DVC_REMOTE_NAME, {"url": RelPath(str(root / DVC_REMOTE_DIR))}
    else:
        endpoint = s3_endpoint_url()
        name, section = DVC_S3_REMOTE_NAME, {"url": remote, **({"endpointurl": endpoint} if endpoint else {})}
    with repo.config.edit() as conf:
        conf["remote"][name] = section
        conf["core"]["remote"] = name
    return name


def use_data_remote(project: Project, *, push: bool = True) -> str:
    """Point the project's DVC repository at ``data.remote`` and push the tracked data there;
    the remote's URL."""
    remote = project.settings.data.remote
    if remote is None:
        raise UsageError(f"{project.config_file}: data.remote is not set (s3://bucket/prefix)")
    if not (project.root / ".dvc").is_dir():
        raise UsageError(f"{project.root}: not a DVC repository (no .dvc/); run `conveyor init` first")
    with quiet_dvc(project.root) as Repo:
        repo = Repo(str(project.root))
        try:
            set_dvc_remote(repo, project.root, remote)
            if push:
                repo.push()
        finally:
            repo.close()
    return remote
