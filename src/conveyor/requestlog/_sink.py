"""Where the writer's finished Parquet parts go: a local folder or an S3 prefix.

:class:`~conveyor.requestlog.RequestLog` buffers and encodes; a sink only stores a finished
part (``write(kind, frame)``), raising :class:`OSError` when it cannot (the writer counts
the records as dropped and serving goes on).

- :class:`FolderSink` — ``<dir>/<kind>-<UTC stamp>-<pid>-<seq>.parquet``, written under a
  hidden temporary name, fsynced and renamed, so readers never see a partial file.
- :class:`S3Sink` — ``<uri>/date=YYYY-MM-DD/hour=HH/<kind>-<replica>-<seq>.parquet``: one PUT
  per part (an S3 object appears whole or not at all), the replica id (host, pid, a random
  suffix) keeps the parts of many replicas apart, and the date/hour partitions let a reader
  list only the hours of its window.

S3 goes through PyArrow's own S3 filesystem (PyArrow is already a dependency of Polars'
Parquet path here; no extra client), with the endpoint of :class:`S3Location` and the AWS
credentials the SDK reads from the environment.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

import polars as pl

from conveyor.requestlog._location import RequestLogLocation, S3Location

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem


class PartSink(Protocol):
    """Stores finished request-log parts."""

    def prepare(self) -> None:
        """Make the destination ready (a folder to exist); called once when the writer starts."""
        ...

    def write(self, kind: str, frame: pl.DataFrame) -> None:
        """Store one part of ``kind`` records; raise OSError when it cannot."""
        ...


class FolderSink:
    """Parts as files in a local folder, each atomically renamed into place."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seq = 0

    def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, kind: str, frame: pl.DataFrame) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{kind}-{stamp}-{os.getpid()}-{self._seq:06d}.parquet"
        temp = self.directory / f".{name}.tmp"
        with temp.open("wb") as handle:
            frame.write_parquet(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.directory / name)
        _fsync_dir(self.directory)


def replica_id() -> str:
    """This serving process among all replicas: host, pid and a random suffix (a restarted
    process with a recycled pid, or two containers both at pid 1, still differ)."""
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class S3Sink:
    """Parts as S3 objects under date/hour partitions, named by replica and sequence."""

    def __init__(self, location: S3Location) -> None:
        self.location = location
        self.replica = replica_id()
        self._seq = 0
        self._fs: S3FileSystem | None = None

    def prepare(self) -> None:
        self._fs = s3_filesystem(self.location)

    def write(self, kind: str, frame: pl.DataFrame) -> None:
        fs = self._fs or s3_filesystem(self.location)
        self._fs = fs
        self._seq += 1
        now = datetime.now(UTC)
        key = f"{partition_key(self.location, now)}/{kind}-{self.replica}-{self._seq:06d}.parquet"
        import pyarrow as pa

        try:
            with fs.open_output_stream(key) as stream:  # one PUT: the object appears whole
                frame.write_parquet(stream)
        except pa.ArrowException as exc:  # S3's refusals are ArrowIOError (an OSError) or kin
            if isinstance(exc, OSError):
                raise
            raise OSError(f"{self.location.bucket}: {type(exc).__name__}: {exc}") from exc


def partition_key(location: S3Location, moment: datetime) -> str:
    """``bucket/prefix/date=YYYY-MM-DD/hour=HH`` of ``moment`` (UTC)."""
    base = f"{location.bucket}/{location.key}".rstrip("/")
    return f"{base}/date={moment:%Y-%m-%d}/hour={moment:%H}"


def s3_filesystem(location: S3Location) -> S3FileSystem:
    """PyArrow's S3 filesystem on ``location``'s endpoint; credentials and region from the
    environment (the AWS SDK's own chain)."""
    from pyarrow.fs import S3FileSystem

    if not location.endpoint_url:
        return S3FileSystem()
    parsed = urlparse(location.endpoint_url)
    return S3FileSystem(endpoint_override=parsed.netloc or parsed.path, scheme=parsed.scheme or "https")


def list_parts(
    location: S3Location, kind: str, since: datetime | None = None, until: datetime | None = None
) -> list[str]:
    """The ``kind`` parts under ``location`` as ``bucket/key`` paths, only from the hour
    partitions that overlap ``[since, until]`` (UTC)."""
    from pyarrow.fs import FileSelector, FileType

    fs = s3_filesystem(location)
    base = f"{location.bucket}/{location.key}".rstrip("/")
    infos = fs.get_file_info(FileSelector(base, recursive=True, allow_not_found=True))
    first = since.replace(minute=0, second=0, microsecond=0) if since is not None else None
    found = []
    for info in infos:
        if info.type != FileType.File or not info.base_name.startswith(f"{kind}-"):
            continue
        if not info.base_name.endswith(".parquet"):
            continue
        hour = _partition_hour(info.path)
        if hour is not None and (
            (first is not None and hour < first) or (until is not None and hour > until)
        ):
            continue
        found.append(info.path)
    return sorted(found)


def _partition_hour(path: str) -> datetime | None:
    parts = dict(p.split("=", 1) for p in path.split("/") if p.startswith(("date=", "hour=")))
    try:
        day = datetime.strptime(parts["date"], "%Y-%m-%d").replace(tzinfo=UTC)
        return day + timedelta(hours=int(parts["hour"]))
    except (KeyError, ValueError):
        return None


def sink_for(location: RequestLogLocation) -> PartSink:
    return S3Sink(location) if isinstance(location, S3Location) else FolderSink(Path(location))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
