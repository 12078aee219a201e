"""Environment processes: one ``conveyor serve`` per environment, supervised.

Each environment lives under ``<state_dir>/envs/<name>/``:

* ``server.pid`` — JSON: pid, host, port, start time of the running server;
* ``server.log`` — the server's stdout and stderr;
* ``admin-token`` — the environment's admin bearer token (mode 0600),
  generated once and handed to the server through the environment variable
  named by ``serving.admin_token_env``; it is never printed;
* ``watchdog.json`` — the environment's watchdog (:mod:`conveyor.deploy._watchdog`),
  which restarts the server when it dies;
* ``side-server.json`` — a blue-green side server while it runs: a record
  left behind by a killed deploy names an orphan the next command reaps.

The server runs detached (its own session), so it outlives the command that
started it. Stopping stops the watchdog first (so it does not restart what is
being stopped), then sends SIGTERM to the server, waits, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from conveyor.config import EnvironmentSettings
from conveyor.deploy._controller import tls_verify
from conveyor.deploy._processes import ProcessRecord, read_record, reap_orphan, stop_process, write_record
from conveyor.errors import ServiceError, UsageError
from conveyor.project import Project
from conveyor.telemetry import TELEMETRY_OPT_OUT

STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.1


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (a zombie counts as dead)."""
    return pid > 0 and ProcessRecord(pid, 0.0, "any").alive()


@dataclass(frozen=True)
class ServerRecord:
    pid: int
    host: str
    port: int
    started: str
    create_time: float = 0.0  # the process's start time: a reused pid is not our server
    version: str | None = None  # the version it was started with (None: the alias's)

    @property
    def process(self) -> ProcessRecord:
        return ProcessRecord(self.pid, self.create_time, "server")


def environment_settings(project: Project, name: str) -> EnvironmentSettings:
    """The settings of environment ``name``; a UsageError lists the configured ones."""
    envs = project.settings.deploy.environments
    if name not in envs:
        known = ", ".join(sorted(envs)) or "none"
        raise UsageError(
            f"--env {name!r}: no such environment in deploy.environments (configured: {known})",
            environment=name,
        )
    return envs[name]


class EnvironmentProcess:
    """The supervised server process of one environment."""

    def __init__(self, project: Project, name: str) -> None:
        self.project = project
        self.name = name

    # -- places ------------------------------------------------------------------
    @property
    def settings(self) -> EnvironmentSettings:
        return environment_settings(self.project, self.name)

    @property
    def directory(self) -> Path:
        folder = self.project.state_dir / "envs" / self.name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def pid_file(self) -> Path:
        return self.directory / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def token_file(self) -> Path:
        return self.directory / "admin-token"

    @property
    def watchdog_file(self) -> Path:
        return self.directory / "watchdog.json"

    @property
    def side_server_file(self) -> Path:
        return self.directory / "side-server.json"

    @property
    def stopped_marker(self) -> Path:
        """Present while the environment is deliberately stopped: no watchdog restarts it."""
        return self.directory / "stopped"

    @property
    def base_url(self) -> str:
        """The local server's URL (a remote environment: its first replica's)."""
        s = self.settings
        if s.remote:
            return s.replica_urls()[0]
        return f"http://{s.host}:{s.port}"

    def refuse_remote(self, what: str) -> None:
        """A UsageError when the environment's replicas are given by URL: Conveyor does not run them."""
        if self.settings.remote:
            raise UsageError(
                f"{what}: environment {self.name!r} is remote (deploy.environments.{self.name}.replicas); "
                "its replicas are started and stopped by their platform (systemd, Kubernetes, by hand), "
                "not by Conveyor; `conveyor status` shows them",
                environment=self.name,
            )

    # -- the admin token -------------------------------------------------------------
    def token_env(self) -> str:
        var = self.project.settings.serving.admin_token_env
        if not var:
            raise UsageError(
                "serving.admin_token_env is empty: the admin endpoints are off, "
                "so Conveyor cannot deploy to a server; name an environment variable there"
            )
        return var

    def token(self) -> str:
        """The environment's admin token, created (0600) on first use."""
        path = self.token_file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    # -- the process ---------------------------------------------------------------------
    def recorded(self) -> ServerRecord | None:
        """The pid record as written, whether or not its process still runs."""
        try:
            return ServerRecord(**json.loads(self.pid_file.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            return None

    def record(self) -> ServerRecord | None:
        """The pid record of a server that is still alive, else None."""
        record = self.recorded()
        return record if record is not None and record.process.alive() else None

    def healthy(self, path: str = "/health", timeout: float = 2.0) -> bool:
        try:
            url = self.base_url + path
            return httpx.get(url, timeout=timeout, verify=tls_verify(url)).status_code == 200
        except httpx.HTTPError:
            return False

    def running(self) -> bool:
        return self.record() is not None and self.healthy()

    def start(
        self, *, wait_path: str = "/ready", timeout: float | None = None, version: str | None = None
    ) -> ServerRecord:
        """Start the server unless it runs already; wait until ``wait_path`` answers 200.

        ``version`` pins the version served at start (default: the environment's alias).
        """
        self.refuse_remote(f"starting {self.name}")
        existing = self.record()
        if existing is not None:
            self.wait(wait_path, timeout)
            return existing
        settings = self.settings
        self.check_port_free()
        env = {**os.environ, **TELEMETRY_OPT_OUT, self.token_env(): self.token()}
        command = [
            sys.executable,
            "-m",
            "conveyor",
            "--project",
            str(self.project.root),
            "serve",
            "--env",
            self.name,
            "--host",
            settings.host,
            "--port",
            str(settings.port),
            *(["--model-version", version] if version else []),
        ]
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.project.root,
                env=env,
                start_new_session=True,  # detached: outlives this command, not in its process group
            )
        record = ServerRecord(
            pid=process.pid,
            host=settings.host,
            port=settings.port or 0,  # a local environment always has one (refuse_remote above)
            started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            create_time=ProcessRecord.of(process.pid, "server").create_time,
            version=version,
        )
        tmp = self.pid_file.with_name("server.pid.tmp")
        tmp.write_text(json.dumps(asdict(record)))
        tmp.replace(self.pid_file)
        try:
            self.wait(wait_path, timeout, process=process)
        except ServiceError:
            self.stop_server()
            raise
        return record

    def check_port_free(self) -> None:
        """A UsageError (one line) when the environment's port is taken: before any model loads."""
        settings = self.settings
        if settings.port is None or port_free(settings.host, settings.port):
            return
        owner = "a process Conveyor did not start"
        try:
            body = httpx.get(self.base_url + "/version", timeout=2.0).json()
            if isinstance(body, dict) and body.get("project"):
                owner = f"the {body.get('env')!r} server of project {body['project']!r}"
        except (httpx.HTTPError, ValueError):
            pass
        raise UsageError(
            f"port {settings.port} of environment {self.name!r} on {settings.host} is taken by {owner}; "
            f"stop it or set deploy.environments.{self.name}.port",
            environment=self.name,
            port=settings.port,
        )

    def wait(
        self,
        path: str = "/ready",
        timeout: float | None = None,
        *,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        """Poll ``path`` until it answers 200; ServiceError (with the log's tail) on timeout or exit."""
        limit = timeout if timeout is not None else self.project.settings.deploy.health_timeout_seconds
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.healthy(path, timeout=1.0):
                return
            if process is not None and process.poll() is not None:
                raise ServiceError(
                    f"the {self.name} server exited with code {process.returncode} while starting; "
                    f"last log line: {self.log_tail()!r} (log: {self.log_file})",
                    environment=self.name,
                )
            time.sleep(POLL_SECONDS)
        raise ServiceError(
            f"the {self.name} server did not answer {path} within {limit:g} s; "
            f"last log line: {self.log_tail()!r} (log: {self.log_file})",
            environment=self.name,
        )

    def log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return ""
        return lines[-1][:300] if lines else ""

    # -- the watchdog ----------------------------------------------------------------------
    def watchdog(self) -> ProcessRecord | None:
        """The environment's running watchdog, else None."""
        record = read_record(self.watchdog_file)
        return record if record is not None and record.alive() else None

    def ensure_watchdog(self) -> ProcessRecord | None:
        """Start the watchdog (detached) unless one runs or ``supervise`` is off; its record or None.

        The watchdog writes its own record once it holds its lock, so two starts
        at once leave one watchdog: the second exits at once.
        """
        if not self.settings.supervise or self.settings.remote:
            return None
        with contextlib.suppress(FileNotFoundError):
            self.stopped_marker.unlink()
        running = self.watchdog()
        if running is not None:
            return running
        command = [
            sys.executable, "-m", "conveyor", "--project", str(self.project.root), "watchdog",
            "--env", self.name,
        ]  # fmt: skip
        env = {**os.environ, **TELEMETRY_OPT_OUT}
        if self.project.settings.serving.admin_token_env:
            env[self.token_env()] = self.token()
        with (self.directory / "watchdog.log").open("ab") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.project.root, env=env, start_new_session=True,
            )  # fmt: skip
        # recorded at once (the watchdog rewrites it when it holds its lock): a stop that
        # comes before the watchdog has finished starting still finds it
        record = ProcessRecord.of(process.pid, "watchdog")
        write_record(self.watchdog_file, record)
        return record

    def stop_watchdog(self, grace: float = STOP_GRACE_SECONDS) -> bool:
        """Stop the watchdog (it must not restart a server being stopped)."""
        return reap_orphan(self.watchdog_file, grace) is not None

    # -- stopping ------------------------------------------------------------------------------
    def stop(self, grace: float = STOP_GRACE_SECONDS) -> bool:
        """Stop the watchdog, then the server. True when a server was stopped.

        The ``stopped`` marker comes first: a watchdog that is still starting (not yet
        recorded) sees it and exits instead of restarting what is being stopped.
        """
        self.stopped_marker.touch()
        self.stop_watchdog(grace)
        reap_orphan(self.side_server_file, grace)
        return self.stop_server(grace)

    def stop_server(self, grace: float = STOP_GRACE_SECONDS) -> bool:
        """SIGTERM the server, wait up to ``grace`` seconds, then SIGKILL. True when one was stopped."""
        record = self.record()
        proc = record.process.process() if record is not None else None
        stopped = proc is not None and stop_process(proc, grace)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        return stopped


def port_free(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` can be bound now (SO_REUSEADDR, as the server binds it)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class SideServer:
    """A short-lived server of one pinned version on a free port, admin API off.

    Blue-green smoke-tests the candidate here before the switch: the
    environment's own server has no way to send a request to an idle version.
    """

    def __init__(self, project: Project, env: str, version: str) -> None:
        self.project = project
        self.env = env
        self.version = version
        self.base_url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._record_file: Path | None = None

    def __enter__(self) -> SideServer:
        env_proc = EnvironmentProcess(self.project, self.env)
        host = env_proc.settings.host
        port = free_port(host)
        self.base_url = f"http://{host}:{port}"
        env = {**os.environ, **TELEMETRY_OPT_OUT}
        var = self.project.settings.serving.admin_token_env
        if var:
            env.pop(var, None)
        command = [
            sys.executable, "-m", "conveyor", "--project", str(self.project.root), "serve",
            "--env", f"{self.env}-smoke", "--model-version", self.version,
            "--host", host, "--port", str(port),
        ]  # fmt: skip
        log_file = env_proc.directory / "smoke-server.log"
        self._record_file = env_proc.side_server_file
        reap_orphan(self._record_file)  # a side server a killed deploy left behind
        with log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.project.root, env=env, start_new_session=True,
            )  # fmt: skip
        # recorded before any wait: a deploy killed from here on leaves a record the next command reaps
        write_record(self._record_file, ProcessRecord.of(self._process.pid, "side-server"))
        deadline = time.monotonic() + self.project.settings.deploy.health_timeout_seconds
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base_url + "/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self._process.poll() is not None:
                break
            time.sleep(POLL_SECONDS)
        self.__exit__(None, None, None)
        raise ServiceError(
            f"version {self.version} did not start for its smoke test (log: {log_file})",
            environment=self.env,
            version=self.version,
        )

    def __exit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._record_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self._record_file.unlink()
