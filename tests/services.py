"""Real PostgreSQL, S3 and ``mlflow server`` for the tests of a team's shared stores.

``from services import ...``; the session fixtures ``postgres``, ``s3`` and ``mlflow_server`` in
tests/conftest.py start each once per test process, on free loopback ports, and stop it at the end.
Put the tests that use them in one xdist group (``@pytest.mark.xdist_group("services")``) so one
worker starts them once. Nothing is mocked: PostgreSQL is Debian's server (``make test-tools``
installs it), S3 is moto's standalone server speaking the S3 HTTP API (the one stand-in: S3 itself
cannot run here), MLflow is the real tracking server on both.

``initdb`` refuses root, so as root the cluster belongs to a system user (:data:`PG_USER`), created
when missing. Host connections need a password (scram-sha-256), so a test can check that the
password never shows in a log, a report or an error.

Each service runs in a process session of its own (:class:`ServiceProcess`, the ``service``
attribute of what the context managers yield), so a fault test can kill it for real
(``kill()``: SIGKILL to the whole process group, as a crashed host), freeze it (``freeze()``:
SIGSTOP to it and every descendant, a hang: its sockets stay open and nothing answers) and start
it again on the same port with the same data (``restart()``). Only a test's own instances are
killed: the session fixtures are shared by every test of a worker.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from support import free_port

__all__ = [
    "PG_USER",
    "S3",
    "MlflowServer",
    "Postgres",
    "ServiceProcess",
    "postgres_binaries",
    "running_mlflow_server",
    "running_postgres",
    "running_s3",
]

PG_USER = "conveyor-pg"  # owns the test cluster when the tests run as root
_PG_ROLE = "conveyor"
_PG_PASSWORD = "pg-secret-7d1f"  # a test may assert it never appears in output
_S3_KEY = "conveyor-test-key"
_S3_SECRET = "s3-secret-91ac"


def postgres_binaries() -> Path | None:
    """Debian's PostgreSQL bin folder (``/usr/lib/postgresql/N/bin``), or one on PATH, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class ServiceProcess:
    """One service's process in a session of its own: started, killed, frozen, restarted for real.

    ``kill`` and ``freeze`` signal the whole process group (PostgreSQL's backends, the MLflow
    server's workers die or stop with their parent); ``restart`` runs the same command again,
    so the service comes back on the same port with the data it had on disk.
    """

    what: str
    command: list[str]
    log: Path
    up: Callable[[], object]
    env: dict[str, str] | None = None
    owner: dict[str, int] = field(default_factory=dict)  # user/group to run as (PostgreSQL as root)
    stop_signal: int = signal.SIGTERM
    process: subprocess.Popen[str] | None = None

    def start(self, seconds: float = 60) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, text=True, env=self.env,
                start_new_session=True, **self.owner,  # type: ignore[call-overload]
            )  # fmt: skip
        _bounded_wait(self.up, self.what, self.process, self.log, seconds)

    def _signal(self, signum: int) -> None:
        """``signum`` to the service's process group and to every descendant: PostgreSQL's backends
        call setsid(), so a signal to the postmaster's group alone leaves open connections answering."""
        if self.process is not None and self.process.poll() is None:
            descendants: list[psutil.Process] = []
            with suppress(psutil.Error):
                descendants = psutil.Process(self.process.pid).children(recursive=True)
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)
            for child in descendants:
                with suppress(psutil.Error):
                    child.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL to every process of the service (a crash: no shutdown, no goodbye to clients)."""
        self._signal(signal.SIGCONT)  # a frozen process group dies too
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(30)
            with suppress(ProcessLookupError):  # children that outlived the leader
                os.killpg(self.process.pid, signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: the service hangs — connections stay open, nothing answers."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def restart(self, seconds: float = 60) -> None:
        """Start the service again after a kill (killing it first if it still runs)."""
        self.kill()
        self.start(seconds)

    def stop(self, seconds: float = 20) -> None:
        """``stop_signal`` (then SIGKILL after ``seconds``), and SIGKILL to anything left of its group."""
        self.thaw()
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Postgres:
    """A running cluster on 127.0.0.1; :meth:`create_database` gives each test its own database."""

    host: str
    port: int
    user: str = _PG_ROLE
    password: str = _PG_PASSWORD
    service: ServiceProcess | None = field(default=None, compare=False, repr=False)

    def uri(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create ``name`` (dropped first if it exists); returns its ``postgresql://`` URI."""
        import psycopg

        with psycopg.connect(self.uri("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)


@dataclass(frozen=True)
class S3:
    """moto's S3 server: the endpoint and the credentials clients need in their environment."""

    endpoint_url: str
    access_key: str = _S3_KEY
    secret_key: str = _S3_SECRET
    region: str = "us-east-1"
    service: ServiceProcess | None = field(default=None, compare=False, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to reach this S3 (boto3, PyArrow and MLflow read these variables)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def create_bucket(self, name: str) -> str:
        """Create ``name`` (no-op if it exists); returns ``s3://name``."""
        client = self.client()
        if name not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=name)
        return f"s3://{name}"


@dataclass(frozen=True)
class MlflowServer:
    url: str
    backend_store_uri: str
    artifacts_destination: str
    env: dict[str, str] = field(default_factory=dict)
    service: ServiceProcess | None = field(default=None, compare=False, repr=False)


def _log_file(name: str) -> Path:
    """Where a service writes its output: a file, never an unread pipe that fills and blocks it."""
    return Path(tempfile.mkdtemp(prefix=f"conveyor-{name}-")) / f"{name}.log"


def _bounded_wait(
    check: Callable[[], object], what: str, process: subprocess.Popen[str], log: Path, seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{what} exited {process.returncode}: {log.read_text(errors='replace')[-2000:]}"
            )
        try:
            if check():
                return
        except Exception as error:  # any failure means "not up yet"
            last = str(error)
        time.sleep(0.2)
    raise RuntimeError(f"{what} not up in {seconds:g} s ({last}): {log.read_text(errors='replace')[-2000:]}")


def _pg_account() -> tuple[str | None, int | None, int | None]:
    """(user name, uid, gid) to run PostgreSQL as: the current user, or :data:`PG_USER` as root."""
    if os.geteuid() != 0:
        return None, None, None
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(PG_USER)
    return PG_USER, entry.pw_uid, entry.pw_gid


@contextmanager
def running_postgres(seconds: float = 60, *, crash_safe: bool = False) -> Iterator[Postgres]:
    """initdb a throw-away cluster and run it on a free loopback port until the block ends.

    ``crash_safe``: a commit returns once it is written out (``synchronous_commit=on``), so a
    ``kill -9`` loses no committed row, as on a real server; ``fsync`` stays off (it matters only
    when the machine itself crashes). Off, the last fraction of a second of commits may be lost.
    """
    bin_dir = postgres_binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL is not installed (Debian package postgresql; make test-tools)")
    _, uid, gid = _pg_account()
    base = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
    os.chmod(base, 0o755)  # the cluster's owner must reach its folder
    data, sockets, pwfile = base / "data", base / "sockets", base / "pwfile"
    sockets.mkdir()
    pwfile.write_text(_PG_PASSWORD + "\n")
    if uid is not None and gid is not None:
        for path in (base, sockets, pwfile):
            os.chown(path, uid, gid)
    as_owner = {"user": uid, "group": gid} if uid is not None else {}
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            _PG_ROLE,
            "--pwfile",
            str(pwfile),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        text=True,
        **as_owner,  # type: ignore[arg-type]
    )
    port = free_port()
    server = Postgres("127.0.0.1", port)

    def up() -> bool:
        import psycopg

        with psycopg.connect(server.uri("postgres"), connect_timeout=2):
            return True

    command = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets)]
    commits = "on" if crash_safe else "off"
    for setting in ("listen_addresses=127.0.0.1", "fsync=off", "full_page_writes=off",
                    f"synchronous_commit={commits}", "max_connections=100"):  # fmt: skip
        command += ["-c", setting]
    # SIGINT is PostgreSQL's fast shutdown: SIGTERM would wait for every client to disconnect
    service = ServiceProcess(
        "postgres",
        command,
        base / "postgres.log",
        up,
        owner=as_owner,
        stop_signal=signal.SIGINT,  # type: ignore[arg-type]
    )
    try:
        service.start(seconds)
        yield Postgres("127.0.0.1", port, service=service)
    finally:
        service.stop()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def running_s3(seconds: float = 60) -> Iterator[S3]:
    """moto's standalone S3 server on a free loopback port until the block ends (a restart after
    ``service.kill()`` comes back empty: moto keeps its buckets in memory)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    service = ServiceProcess(
        "moto_server",
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        _log_file("moto"),
        lambda: httpx.get(f"{endpoint}/moto-api/", timeout=2).status_code < 500,
    )
    try:
        service.start(seconds)
        yield S3(endpoint, service=service)
    finally:
        service.stop()


@contextmanager
def running_mlflow_server(
    backend_store_uri: str, artifacts_destination: str, env: dict[str, str], seconds: float = 180
) -> Iterator[MlflowServer]:
    """``mlflow server`` on a free loopback port: runs and registry in ``backend_store_uri`` (PostgreSQL),
    artifacts proxied to ``artifacts_destination`` (S3); ``env`` carries the S3 endpoint and keys."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "mlflow"), "server",
               "--backend-store-uri", backend_store_uri, "--artifacts-destination", artifacts_destination,
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    service = ServiceProcess(
        "mlflow server",
        command,
        _log_file("mlflow-server"),
        lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200,
        env={**os.environ, **env, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
    )
    try:
        service.start(seconds)
        yield MlflowServer(url, backend_store_uri, artifacts_destination, env, service=service)
    finally:
        service.stop()
