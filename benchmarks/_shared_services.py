"""PostgreSQL, moto's S3 and ``mlflow server`` for :mod:`benchmarks.shared_stores`.

A small copy of what tests/services.py starts, not an import of it: that module imports the
tests' ``support`` helpers by a path only pytest's rootdir puts on ``sys.path``. Same services,
same flags (a throw-away cluster with fsync off, moto on loopback, the tracking server with
``--artifacts-destination s3://…``), shaped for one benchmark run: a context manager that yields
the tracking URL and the environment a client process needs.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from conveyor.deploy import free_port

_ROLE, _PASSWORD, _OWNER = "conveyor", "bench-pg-secret", "conveyor-pg"
_S3_ENV = {
    "AWS_ACCESS_KEY_ID": "bench-key",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, seconds: float = 240
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if ready():
                return
        except Exception:  # not listening yet: any error means "try again"
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{what} did not come up in {seconds:g} s")


@contextmanager
def _process(argv: list[str], what: str, ready: Callable[[], bool], **kwargs: object) -> Iterator[None]:
    log = open(Path(tempfile.mkdtemp(prefix="bench-svc-")) / f"{what}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
    try:
        _until(ready, process, what)
        yield
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _postgres(stack: ExitStack) -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (make test-tools)")
    bin_dir = Path(found[-1]).parent
    owner: dict[str, int] = {}
    if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to a system user
        if subprocess.run(["id", _OWNER], capture_output=True).returncode:
            subprocess.run(["useradd", "--system", "--no-create-home", _OWNER], check=True)
        entry = pwd.getpwnam(_OWNER)
        owner = {"user": entry.pw_uid, "group": entry.pw_gid}
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    stack.callback(shutil.rmtree, base, True)
    (base / "pw").write_text(_PASSWORD)
    for path in (base, base / "pw"):
        os.chown(path, owner.get("user", -1), owner.get("group", -1))
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(base / "data"),
            "-U",
            _ROLE,
            "--pwfile",
            str(base / "pw"),
            "--auth-host=scram-sha-256",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        **owner,
    )  # type: ignore[call-overload]
    port = free_port()
    uri = f"postgresql+psycopg://{_ROLE}:{_PASSWORD}@127.0.0.1:{port}/postgres"

    def up() -> bool:
        import psycopg

        with psycopg.connect(uri.replace("+psycopg", ""), connect_timeout=2):
            return True

    argv = [
        str(bin_dir / "postgres"),
        "-D",
        str(base / "data"),
        "-p",
        str(port),
        "-k",
        str(base),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
    ]
    stack.enter_context(_process(argv, "postgres", up, **owner))
    return uri


@contextmanager
def shared_stores() -> Iterator[tuple[str, dict[str, str]]]:
    """(tracking URL, client environment): PostgreSQL + S3 + ``mlflow server`` until the block ends."""
    bin_dir = Path(sys.executable).parent
    with ExitStack() as stack:
        backend = _postgres(stack)
        s3_port = free_port()
        endpoint = f"http://127.0.0.1:{s3_port}"
        stack.enter_context(
            _process(
                [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)],
                "moto",
                lambda: httpx.get(f"{endpoint}/moto-api/", timeout=2).status_code < 500,
            )
        )
        env = {
            **_S3_ENV,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "MLFLOW_S3_ENDPOINT_URL": endpoint,
        }
        for bucket in ("mlflow", "requests"):
            httpx.put(f"{endpoint}/{bucket}", timeout=10).raise_for_status()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [
            str(bin_dir / "mlflow"),
            "server",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            "s3://mlflow/artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        stack.enter_context(
            _process(
                argv,
                "mlflow-server",
                lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200,
                env={**os.environ, **env, "MLFLOW_DISABLE_TELEMETRY": "true"},
            )
        )
        yield url, env
