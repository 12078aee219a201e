"""The request log: every answer and every feedback event, in Parquet files, off the request path.

Request handlers only append a tuple to an in-memory buffer. A background thread
writes the buffer to ``predictions-*.parquet`` / ``feedback-*.parquet`` whenever
``flush_rows`` records wait or ``flush_seconds`` have passed, and on close. Each file
is written under a hidden temporary name, fsynced and atomically renamed, so readers
never see a partial file. A crash loses at most the unwritten buffer (see
docs/serving.md, "Loss bound"). If the disk falls behind by ``max_pending`` records,
new records are dropped and counted, so logging never slows or fails a request.

This module owns the format: the column lists, the ``outcome`` of an answer (``ok``,
``client_error``, ``model_error``, ``server_error``) and the readers. The canary
analysis (deploy) and the monitor read the log through :func:`read_request_log` and
:func:`scan_request_log` — never with a schema of their own. Files written before a
column existed read with it filled in (``outcome`` from the status, ``warnings`` null).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from conveyor.errors import InputError
from conveyor.requestlog._location import RequestLogLocation, S3Location
from conveyor.requestlog._sink import PartSink, list_parts, sink_for

_log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
FEEDBACK = "feedback"
_TS = pl.Datetime("us", "UTC")
PREDICTION_SCHEMA: dict[str, Any] = {
    "ts": _TS,
    "request_id": pl.String,
    "env": pl.String,
    "model_version": pl.String,
    "variant": pl.String,
    "endpoint": pl.String,
    "user_id": pl.String,
    "features": pl.String,
    "output": pl.String,
    "latency_ms": pl.Float64,
    "status": pl.Int32,
    "outcome": pl.String,
    "warnings": pl.String,
}
FEEDBACK_SCHEMA: dict[str, Any] = {
    "ts": _TS,
    "request_id": pl.String,
    "user_id": pl.String,
    "item_id": pl.String,
    "event": pl.String,
    "model_version": pl.String,
    "variant": pl.String,
}
OK = "ok"
CLIENT_ERROR = "client_error"  # the caller's fault: a 4xx
MODEL_ERROR = "model_error"  # the model raised: a 500 the server owns
SERVER_ERROR = "server_error"  # any other 5xx (no model loaded, versions changing)
OUTCOMES = (OK, CLIENT_ERROR, MODEL_ERROR, SERVER_ERROR)
_JSON_COLUMNS = {"features", "output", "warnings"}
_NULLABLE_JSON_COLUMNS = {"warnings"}
_ID_COLUMNS = {"user_id", "item_id"}
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def outcome_of(status: int) -> str:
    """The outcome an HTTP status implies (a model error is only known to the handler)."""
    if status < 400:
        return OK
    return CLIENT_ERROR if status < 500 else SERVER_ERROR


def _outcome_filled() -> pl.Expr:
    """``outcome``, derived from ``status`` where a file written before the column has none."""
    status = pl.col("status")
    implied = (
        pl.when(status < 400)
        .then(pl.lit(OK))
        .when(status < 500)
        .then(pl.lit(CLIENT_ERROR))
        .otherwise(pl.lit(SERVER_ERROR))
    )
    return pl.coalesce(pl.col("outcome"), implied).alias("outcome")


def now_us() -> int:
    """Microseconds since the epoch (the cheap form of ``ts`` kept in the buffer)."""
    return time.time_ns() // 1000


class RequestLog:
    """Buffered, background-written Parquet log of one server's requests."""

    def __init__(
        self,
        directory: RequestLogLocation,
        *,
        flush_rows: int,
        flush_seconds: float,
        max_pending: int | None = None,
        on_written: Callable[[str, int], None] | None = None,
        on_dropped: Callable[[str, int], None] | None = None,
    ) -> None:
        self.directory = directory
        self.sink: PartSink = sink_for(directory)  # where finished parts go (a folder or S3)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending if max_pending is not None else 100 * flush_rows
        self.on_written = on_written
        self.on_dropped = on_dropped
        self._buffers: dict[str, list[tuple[Any, ...]]] = {PREDICTIONS: [], FEEDBACK: []}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- request path (cheap) ------------------------------------------------------------
    def log_prediction(
        self,
        *,
        request_id: str,
        env: str,
        model_version: str | None,
        variant: str | None,
        endpoint: str,
        user_id: int | str | None,
        features: Any,
        output: Any,
        latency_ms: float,
        status: int,
        outcome: str | None = None,
        warnings: list[dict[str, str]] | None = None,
    ) -> None:
        """Queue one answer; ``features``, ``output`` and ``warnings`` are JSON-encoded by the writer.

        ``outcome`` defaults to the one the status implies (see :func:`outcome_of`);
        ``warnings`` are the answer's input flags (None or empty: none).
        """
        record = (
            now_us(),
            request_id,
            env,
            model_version,
            variant,
            endpoint,
            user_id,
            features,
            output,
            latency_ms,
            status,
            outcome or outcome_of(status),
            warnings or None,
        )
        self._append(PREDICTIONS, record)

    def log_feedback(
        self,
        *,
        request_id: str | None,
        user_id: int | str | None,
        item_id: int | str,
        event: str,
        model_version: str | None,
        variant: str | None,
    ) -> None:
        self._append(FEEDBACK, (now_us(), request_id, user_id, item_id, event, model_version, variant))

    def _append(self, kind: str, record: tuple[Any, ...]) -> None:
        with self._lock:
            buffer = self._buffers[kind]
            if len(buffer) >= self.max_pending:
                dropped = True
            else:
                buffer.append(record)
                dropped = False
                full = len(buffer) >= self.flush_rows
        if dropped:
            if self.on_dropped is not None:
                self.on_dropped(kind, 1)
        elif full:
            self._wake.set()

    # -- writer thread -------------------------------------------------------------------
    def start(self) -> None:
        """Start the background writer (idempotent)."""
        if self._thread is not None:
            return
        self.sink.prepare()
        self._thread = threading.Thread(target=self._run, name="conveyor-request-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write everything buffered and stop the writer."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def flush(self) -> None:
        """Write the buffered records now (each kind to its own file)."""
        with self._write_lock:
            for kind in (PREDICTIONS, FEEDBACK):
                with self._lock:
                    records, self._buffers[kind] = self._buffers[kind], []
                if records:
                    self._write(kind, records)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def _write(self, kind: str, records: list[tuple[Any, ...]]) -> None:
        schema = PREDICTION_SCHEMA if kind == PREDICTIONS else FEEDBACK_SCHEMA
        try:
            self.sink.write(kind, _frame(records, schema))
        except OSError as exc:
            # the disk or the object store failed: the records are lost, counted, and serving goes on
            _log.error("request log: cannot write %d %s records: %s", len(records), kind, exc)
            if self.on_dropped is not None:
                self.on_dropped(kind, len(records))
            return
        if self.on_written is not None:
            self.on_written(kind, len(records))


def _frame(records: list[tuple[Any, ...]], schema: dict[str, Any]) -> pl.DataFrame:
    columns: dict[str, list[Any]] = {}
    for i, name in enumerate(schema):
        values = [r[i] for r in records]
        if name in _NULLABLE_JSON_COLUMNS:  # no warnings: null, not the text "null"
            values = [None if v is None else _json_text(v) for v in values]
        elif name in _JSON_COLUMNS:
            values = [_json_text(v) for v in values]
        elif name in _ID_COLUMNS:
            values = [None if v is None else str(v) for v in values]
        columns[name] = values
    frame = pl.DataFrame(columns, schema={**schema, "ts": pl.Int64})
    return frame.with_columns(pl.col("ts").cast(_TS))


def _json_text(value: Any) -> str:
    """``value`` as JSON text. orjson: about 25 x faster than ``json`` here, which matters
    because the writer thread holds the GIL while it encodes (NaN is written as null)."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:  # integers beyond 64 bits: logged as the floats the model saw
        return orjson.dumps(_no_big_ints(value), default=str, option=_ORJSON_OPTIONS).decode()


def _no_big_ints(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_big_ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_big_ints(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        try:
            return float(value)
        except OverflowError:
            return str(value)
    return value


def read_request_log(
    directory: RequestLogLocation, since: datetime | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The logged predictions and feedback events under ``directory`` (rows with ``ts >= since``).

    Both frames have the documented columns even when no file exists yet; a naive
    ``since`` is taken as UTC. ``directory`` is a folder or an :class:`S3Location`.
    """
    return (
        scan_request_log(directory, PREDICTIONS, since=since, left_open=False),
        scan_request_log(directory, FEEDBACK, since=since, left_open=False),
    )


def read_request_logs(
    locations: Sequence[RequestLogLocation], since: datetime | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`read_request_log` of several places (an environment's replicas), pooled."""
    read = [read_request_log(d, since) for d in dict.fromkeys(locations)]
    if len(read) == 1:
        return read[0]
    return pl.concat([p for p, _ in read]), pl.concat([f for _, f in read])


def scan_request_log(
    directory: RequestLogLocation,
    kind: str,
    columns: tuple[str, ...] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    left_open: bool = True,
) -> pl.DataFrame:
    """The ``kind`` records (``predictions`` or ``feedback``) under ``directory``, only ``columns``.

    Rows with ``since < ts <= until`` (``since <= ts`` when not ``left_open``); naive
    instants are UTC. A lazy scan: the window and the column list are pushed down into
    the Parquet reader, which keeps a million requests within seconds. Every column
    of the documented schema is present, also for files written before it existed.
    """
    schema = PREDICTION_SCHEMA if kind == PREDICTIONS else FEEDBACK_SCHEMA
    columns = tuple(schema) if columns is None else columns
    unknown = [c for c in columns if c not in schema]
    if unknown:
        raise ValueError(f"not {kind} columns: {unknown}")
    files: list[Path] | list[str]
    storage: dict[str, str] | None = None
    if isinstance(directory, S3Location):
        try:
            keys = list_parts(
                directory,
                kind,
                _utc(since) if since is not None else None,
                _utc(until) if until is not None else None,
            )
        except OSError as exc:
            raise InputError(f"{directory}: unreadable request log ({exc})", path=str(directory)) from exc
        files, storage = [f"s3://{key}" for key in keys], _storage_options(directory)
    else:
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise InputError(f"{directory}: request log is not a directory", path=str(directory))
        files = sorted(directory.glob(f"{kind}-*.parquet")) if directory.is_dir() else []
    if not files:
        return pl.DataFrame(schema={c: schema[c] for c in columns})
    ts = pl.col("ts").cast(_TS)
    conditions = []
    if since is not None:
        cutoff = _utc(since)
        conditions.append(ts > cutoff if left_open else ts >= cutoff)
    if until is not None:
        conditions.append(ts <= _utc(until))
    needed = list(dict.fromkeys([*columns, *(["status"] if "outcome" in columns else [])]))
    try:
        # the full schema: a file written before a column existed gets it as nulls
        frame = pl.scan_parquet(files, schema=schema, missing_columns="insert", storage_options=storage)
        for condition in conditions:  # filtered before the selection: ``ts`` need not be asked for
            frame = frame.filter(condition)
        frame = frame.select(needed)
        if "outcome" in columns:
            frame = frame.with_columns(_outcome_filled())
        return frame.select(columns).collect()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(
            f"{directory}: unreadable request log ({type(exc).__name__}: {exc})", path=str(directory)
        ) from exc


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _storage_options(location: S3Location) -> dict[str, str] | None:
    """Polars' object-store options for ``location``: its endpoint (plain HTTP allowed for a
    local one); the keys and the region come from the environment, as for every AWS client."""
    if not location.endpoint_url:
        return None
    return {
        "aws_endpoint_url": location.endpoint_url,
        "aws_allow_http": str(location.endpoint_url.startswith("http://")).lower(),
    }
