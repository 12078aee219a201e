"""PostgreSQL: Conveyor's state shared by every runner and laptop of a team (through SQLAlchemy).

Four tables, created on first use (in one transaction under a transaction-level
advisory lock, so two processes starting at once do not race), with a schema
version that a newer Conveyor may migrate and an older one refuses:

- ``conveyor_state_schema(version)``;
- ``conveyor_log(id bigserial, log, data json, written_at)`` (``json``, not
  ``jsonb``: a record reads back with its keys in the order they were written) — an append takes
  the log's transaction-level advisory lock first, so ids are handed out in
  the order appends commit and a reader resuming after id ``n`` misses nothing;
- ``conveyor_documents(key, version, data json, updated_at)`` — ``version``
  counts writes; a compare-and-set is one ``UPDATE … WHERE version = …``
  (or ``INSERT … ON CONFLICT DO NOTHING`` for "must not exist");
- ``conveyor_locks(name, record json, updated_at)`` — each lock's record.

**Locks are PostgreSQL session advisory locks**, not lease rows: the holder
keeps one dedicated connection open (outside the pool) for as long as it holds
the lock, and the server releases the lock the moment that session ends —
a clean release, the process exiting, or the process killed with ``-9`` (the
kernel closes its socket; TCP keepalives cover a host that vanishes without
closing it). A lease would need a renewal thread and a clock to trust, and
would hold a dead holder's environment for a whole lease period. The record
row is separate and outlives a dead holder, which is how the next holder
learns that a deployment was interrupted. Whether a lock is held is read from
``pg_locks`` (read-only: a probe never takes the lock, so it never makes a
real contender fail).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from conveyor.errors import LockBusy, OperationError, StateConflict, StateStoreError, UsageError
from conveyor.state._types import ANY, Document, Expected, LockState, LogRecord, check_name, to_json

SCHEMA_VERSION = 1
POLL_SECONDS = 0.1  # how often a waiting lock asks again
CONNECT_TIMEOUT_SECONDS = 10
_SETUP_KEY = 0x636F6E76_65796F72  # "conveyor": the advisory lock that serialises creating the tables

_DDL = (
    "CREATE TABLE IF NOT EXISTS conveyor_state_schema (version integer NOT NULL)",
    """CREATE TABLE IF NOT EXISTS conveyor_log (
        id bigserial PRIMARY KEY, log text NOT NULL, data json NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS conveyor_log_by_log ON conveyor_log (log, id)",
    """CREATE TABLE IF NOT EXISTS conveyor_documents (
        key text PRIMARY KEY, version bigint NOT NULL, data json NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS conveyor_locks (
        name text PRIMARY KEY, record json, updated_at timestamptz NOT NULL DEFAULT now())""",
)


def parse_uri(uri: str) -> URL:
    """The SQLAlchemy URL of a ``postgresql://`` URI (driven by psycopg 3); a UsageError otherwise."""
    try:
        url = make_url(uri)
    except ArgumentError:
        raise StateStoreError(
            "the state store URI is not a URI; expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    if url.get_backend_name() != "postgresql":
        raise StateStoreError(
            f"the state store URI has scheme {url.drivername!r}; expected postgresql://…"
            " (or leave the variable unset for the project's local folder)"
        )
    if url.drivername in ("postgresql", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    raise StateStoreError(
        f"the state store URI names driver {url.drivername!r}; use postgresql:// (psycopg 3)"
    )


def describe(url: URL) -> str:
    """``user@host:port/database``: the store named without its password."""
    where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    return f"postgresql://{url.username}@{where}" if url.username else f"postgresql://{where}"


def lock_key(name: str) -> int:
    """The 63-bit advisory lock key of a lock name (stable across processes and versions)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big") & (2**63 - 1)


# Held locks stay held until released or until the process ends, even when the caller drops the
# object: a lock is not released by the garbage collector.
_HELD: set[PostgresLock] = set()


class PostgresLock:
    """A held advisory lock: its own connection, open until release (or the holder's death)."""

    def __init__(self, store: PostgresStore, name: str, conn: Connection, left_behind: dict[str, Any] | None):
        self.name = name
        self.left_behind = left_behind
        self._store = store
        self._conn: Connection | None = conn

    def update(self, record: Mapping[str, Any]) -> None:
        if self._conn is None:
            raise OperationError(f"the lock {self.name!r} is not held: take it first")
        self._store._write_record(self._conn, self.name, record)

    def release(self) -> None:
        _HELD.discard(self)
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            with self._store._errors("release a lock"):
                conn.execute(text("DELETE FROM conveyor_locks WHERE name = :n"), {"n": self.name})
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(self.name)})
        finally:
            conn.close()  # closing the session frees the lock even when the statements above failed

    def __enter__(self) -> PostgresLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _bounded_connection(timeout: float) -> type[Any]:
    """psycopg's connection class with a deadline on every wait for the server's answer.

    psycopg bounds the connection phase (``connect_timeout``) but waits for a statement's answer for
    ever: a server that is frozen (a paused VM, a stopped process, a disk that hangs) keeps its
    socket open and the kernel acknowledges every packet, so neither TCP keepalives nor
    ``tcp_user_timeout`` notice, and a deploy would hang holding its lock. psycopg's own ``wait``
    takes a timeout and none of its callers pass one; this subclass passes ``timeout``. On expiry
    the connection's state is unknown (the statement may still run), so it is closed: SQLAlchemy's
    pool drops it and the caller gets an OperationalError that :meth:`PostgresStore._errors` turns
    into one line.
    """
    import psycopg

    class BoundedConnection(psycopg.Connection):
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            try:
                return super().wait(gen, interval=interval, timeout=timeout if timeout is not None else limit)
            except psycopg.errors._WaitTimeout:  # private: the one exception psycopg's wait raises on expiry
                self.pgconn.finish()
                raise psycopg.OperationalError(
                    f"the server gave no answer within {limit:g} s (state.timeout_seconds)"
                ) from None

    limit = timeout
    return BoundedConnection


class PostgresStore:
    """Conveyor's state in a PostgreSQL database (see the module docstring)."""

    kind = "postgresql"

    def __init__(self, uri: str, *, timeout: float = 30.0) -> None:
        self._url = parse_uri(uri)
        self.timeout = timeout
        self._connect_timeout = min(CONNECT_TIMEOUT_SECONDS, max(1, round(timeout)))  # libpq: whole seconds
        args = {
            "connect_timeout": self._connect_timeout,
            "application_name": "conveyor",
            # a holder whose host vanishes without closing its socket is noticed within about a minute
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
        try:
            self._engine: Engine = create_engine(self._url, pool_pre_ping=True, connect_args=args)
            # locks: one session per held lock, really closed on release (no pool keeps it alive)
            self._lock_engine: Engine = create_engine(self._url, poolclass=NullPool, connect_args=args)
            connection = _bounded_connection(timeout)
        except (NoSuchModuleError, ImportError) as exc:
            raise UsageError(
                "a PostgreSQL state store needs psycopg 3: pip install 'conveyor-ml[team]'"
            ) from exc
        for engine in (self._engine, self._lock_engine):
            # SQLAlchemy's documented hook for making the DBAPI connection: ours, with its deadline
            event.listen(
                engine, "do_connect", lambda _d, _r, cargs, cparams: connection.connect(*cargs, **cparams)
            )
        self._ready = False

    @property
    def location(self) -> str:
        return describe(self._url)

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    # -- connections and errors ------------------------------------------------------------
    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Driver errors → one line naming the store (never the password)."""
        try:
            yield
        except DBAPIError as exc:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
            if self._url.password:
                detail = detail.replace(str(self._url.password), "***")
            if detail == "connection timeout expired":  # psycopg's words for connect_timeout
                detail = f"the server accepted no connection within {self._connect_timeout:g} s"
            if exc.connection_invalidated or "connect" in detail or exc.orig is None:
                raise StateStoreError(f"state store {self.location}: cannot {doing}: {detail}") from None
            raise OperationError(f"state store {self.location}: cannot {doing}: {detail}") from None
        except SQLAlchemyError as exc:
            raise StateStoreError(
                f"state store {self.location}: cannot {doing}: {type(exc).__name__}"
            ) from None

    @contextmanager
    def _begin(self, doing: str) -> Iterator[Connection]:
        self._setup()
        with self._errors(doing), self._engine.begin() as conn:
            yield conn

    def _setup(self) -> None:
        if self._ready:
            return
        with self._errors("connect"), self._engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SETUP_KEY})
            for statement in _DDL:
                conn.execute(text(statement))
            found = conn.execute(text("SELECT max(version) FROM conveyor_state_schema")).scalar()
            if found is None:
                conn.execute(text("INSERT INTO conveyor_state_schema VALUES (:v)"), {"v": SCHEMA_VERSION})
            elif found > SCHEMA_VERSION:
                raise StateStoreError(
                    f"state store {self.location}: its schema version {found} is newer than this "
                    f"Conveyor's ({SCHEMA_VERSION}); upgrade Conveyor"
                )
        self._ready = True

    def check(self) -> None:
        """Connect (and create the tables); a StateStoreError in one line when that fails."""
        self._setup()

    # -- logs --------------------------------------------------------------------------
    def append(self, log: str, data: Mapping[str, Any]) -> LogRecord:
        check_name(log)
        payload = to_json(data)
        with self._begin("append to a log") as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("log:" + log)})
            row_id = conn.execute(
                text("INSERT INTO conveyor_log (log, data) VALUES (:log, CAST(:data AS json)) RETURNING id"),
                {"log": log, "data": payload},
            ).scalar_one()
        return LogRecord(int(row_id), json.loads(payload))

    def read(self, log: str, *, after: int = 0) -> list[LogRecord]:
        check_name(log)
        with self._begin("read a log") as conn:
            rows = conn.execute(
                text("SELECT id, data FROM conveyor_log WHERE log = :log AND id > :after ORDER BY id"),
                {"log": log, "after": after},
            ).all()
        return [LogRecord(int(row.id), dict(row.data)) for row in rows]

    # -- documents -----------------------------------------------------------------------
    def get(self, key: str) -> Document | None:
        check_name(key)
        with self._begin("read a document") as conn:
            row = conn.execute(
                text("SELECT version, data FROM conveyor_documents WHERE key = :k"), {"k": key}
            ).first()
        return None if row is None else Document(key, dict(row.data), str(row.version))

    def put(self, key: str, data: Mapping[str, Any], *, expected: Expected = ANY) -> Document:
        check_name(key)
        params: dict[str, Any] = {"k": key, "d": to_json(data)}
        if expected is ANY:
            sql = """INSERT INTO conveyor_documents (key, version, data) VALUES (:k, 1, CAST(:d AS json))
                     ON CONFLICT (key) DO UPDATE SET data = excluded.data,
                     version = conveyor_documents.version + 1, updated_at = now() RETURNING version"""
        elif expected is None:
            sql = """INSERT INTO conveyor_documents (key, version, data) VALUES (:k, 1, CAST(:d AS json))
                     ON CONFLICT (key) DO NOTHING RETURNING version"""
        else:
            sql = """UPDATE conveyor_documents SET data = CAST(:d AS json), version = version + 1,
                     updated_at = now() WHERE key = :k AND version = :v RETURNING version"""
            params["v"] = _as_version(expected)
        with self._begin("write a document") as conn:
            version = conn.execute(text(sql), params).scalar()
        if version is None:
            raise StateConflict(
                f"state document {key!r} changed since it was read; read it again and retry", key=key
            )
        return Document(key, json.loads(params["d"]), str(version))

    def delete(self, key: str, *, expected: Expected = ANY) -> bool:
        check_name(key)
        with self._begin("delete a document") as conn:
            if expected is ANY:
                done = conn.execute(text("DELETE FROM conveyor_documents WHERE key = :k"), {"k": key})
                return bool(done.rowcount)
            if expected is None:
                exists = conn.execute(text("SELECT 1 FROM conveyor_documents WHERE key = :k"), {"k": key})
                if exists.first() is None:
                    return False
            else:
                done = conn.execute(
                    text("DELETE FROM conveyor_documents WHERE key = :k AND version = :v"),
                    {"k": key, "v": _as_version(expected)},
                )
                if done.rowcount:
                    return True
        raise StateConflict(
            f"state document {key!r} changed since it was read; read it again and retry", key=key
        )

    def move(self, key: str, new_key: str) -> bool:
        check_name(key)
        check_name(new_key)
        with self._begin("rename a document") as conn:
            row = conn.execute(
                text("DELETE FROM conveyor_documents WHERE key = :k RETURNING data"), {"k": key}
            ).first()
            if row is None:
                return False
            conn.execute(
                text(
                    """INSERT INTO conveyor_documents (key, version, data) VALUES (:k, 1, CAST(:d AS json))
                       ON CONFLICT (key) DO UPDATE SET data = excluded.data,
                       version = conveyor_documents.version + 1, updated_at = now()"""
                ),
                {"k": new_key, "d": json.dumps(row.data)},
            )
        return True

    def keys(self, prefix: str) -> list[str]:
        check_name(prefix)
        with self._begin("list documents") as conn:
            rows = conn.execute(
                text(
                    """SELECT key FROM conveyor_documents WHERE starts_with(key, :p)
                       AND position('/' in substr(key, :n)) = 0 ORDER BY key"""
                ),
                {"p": prefix + "/", "n": len(prefix) + 2},
            ).scalars()
            return list(rows)

    # -- locks ---------------------------------------------------------------------------
    def lock(self, name: str, *, wait: float = 0.0, record: Mapping[str, Any] | None = None) -> PostgresLock:
        check_name(name)
        self._setup()
        key = lock_key(name)
        deadline = time.monotonic() + max(0.0, wait)
        with self._errors("take a lock"):
            conn = self._lock_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            with self._errors("take a lock"):
                while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                    if time.monotonic() >= deadline:
                        found = self._read_record(conn, name)
                        raise LockBusy(
                            f"the lock {name!r} is held by another process", record=found, lock=name
                        )
                    time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
                held = PostgresLock(self, name, conn, self._read_record(conn, name))
                if record is not None:
                    held.update(record)
                _HELD.add(held)
        except BaseException:
            conn.close()  # ends the session: a lock it took is released with it
            raise
        return held

    @staticmethod
    def _read_record(conn: Connection, name: str) -> dict[str, Any] | None:
        row = conn.execute(text("SELECT record FROM conveyor_locks WHERE name = :n"), {"n": name}).first()
        return None if row is None or row.record is None else dict(row.record)

    def _write_record(self, conn: Connection, name: str, record: Mapping[str, Any]) -> None:
        with self._errors("write a lock's record"):
            conn.execute(
                text(
                    """INSERT INTO conveyor_locks (name, record) VALUES (:n, CAST(:r AS json))
                       ON CONFLICT (name) DO UPDATE SET record = excluded.record, updated_at = now()"""
                ),
                {"n": name, "r": to_json(record)},
            )

    def lock_state(self, name: str) -> LockState:
        check_name(name)
        key = lock_key(name)
        with self._begin("read a lock") as conn:
            held = conn.execute(
                text(
                    """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND classid = CAST(CAST(:hi AS bigint) AS oid)
                       AND objid = CAST(CAST(:lo AS bigint) AS oid) AND objsubid = 1"""
                ),
                {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
            ).scalar_one()
            record = self._read_record(conn, name)
        return LockState(name, bool(held), record)

    def dispose(self) -> None:
        """Close the pooled connections (held locks keep their own)."""
        self._engine.dispose()


def _as_version(expected: str) -> int:
    try:
        return int(expected)
    except ValueError:
        raise StateConflict(f"not a version of this store: {expected!r}") from None
