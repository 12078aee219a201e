"""Starting a Spark session from ``conveyor.yaml``'s ``spark`` section, with one-line errors.

Everything that can stop Spark before it does any work is checked first, in
Python, so that the answer is one line naming the fix instead of a Java stack
trace: PySpark missing (the ``spark`` extra), no Java (``JAVA_HOME`` or
``PATH``), a master that cannot be reached (a TCP connection to a standalone
or Kubernetes master; ``yarn`` needs ``HADOOP_CONF_DIR``). What only the JVM
can judge — a memory setting it refuses, an ALS parameter out of range — is
converted at the boundary from the Java exception's first line.

The driver JVM logs to a file (``log4j2.properties`` beside this module points
Spark's log there, and the JVM's own stderr is sent to the same file while it
starts), so nothing Java-shaped reaches the terminal; every error names the
file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from conveyor.config import SparkSection, env_flag
from conveyor.errors import OperationError, UsageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
CONNECT_TIMEOUT_SECONDS = 3.0
INSTALL_EXTRA = "pip install 'conveyor-ml[spark]'"
JAVA_HINT = "Spark 4 needs Java 17 or 21: install one (e.g. apt-get install openjdk-17-jre-headless)"
# lines of a JVM log that say why it stopped, most specific first
_JVM_REASONS = (
    "Invalid maximum heap size",
    "Invalid initial heap size",
    "Too small",
    "must be at least",
    "UnsupportedClassVersionError",
    "Could not create the Java Virtual Machine",
    "Exception",
)


class SparkSetupError(UsageError):
    """Spark cannot start with this setup (PySpark, Java, the master, a setting Spark refuses)."""


def require_pyspark() -> None:
    """UsageError naming the ``spark`` extra when PySpark is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SparkSetupError(
            f"PySpark is not installed: model.engine spark and the Spark data checks need the "
            f"spark extra ({INSTALL_EXTRA})"
        ) from exc


def find_java() -> str:
    """The java executable Spark's launcher will use (JAVA_HOME's, else PATH's); UsageError if none."""
    home = env_flag("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not (java.is_file() and os.access(java, os.X_OK)):
            raise SparkSetupError(f"JAVA_HOME={home} holds no bin/java: {JAVA_HINT}, or fix JAVA_HOME")
        return str(java)
    found = shutil.which("java")
    if found is None:
        raise SparkSetupError(f"no java on PATH and JAVA_HOME is not set: {JAVA_HINT}")
    return found


def _endpoints(master: str) -> list[tuple[str, int]]:
    """The (host, port) pairs a standalone or Kubernetes master URL names (empty for local, yarn)."""
    if master.startswith("spark://"):
        pairs = []
        for part in master.removeprefix("spark://").split(","):
            host, _, port = part.rpartition(":")
            pairs.append((host, int(port)))
        return pairs
    if master.startswith("k8s://"):
        url = urlsplit(master.removeprefix("k8s://"))
        default = 443 if url.scheme == "https" else 80
        return [(url.hostname or "", url.port or default)] if url.hostname else []
    return []


def check_master(master: str) -> None:
    """UsageError when no address of ``master`` accepts a TCP connection (or yarn has no config)."""
    if master == "yarn":
        if not (env_flag("HADOOP_CONF_DIR") or env_flag("YARN_CONF_DIR")):
            raise SparkSetupError(
                "spark.master yarn: set HADOOP_CONF_DIR or YARN_CONF_DIR to the cluster's configuration"
            )
        return
    failures = []
    for host, port in _endpoints(master):
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS):
                return
        except OSError as exc:
            failures.append(f"{host}:{port}: {exc.strerror or exc}")
    if failures:
        raise SparkSetupError(
            f"spark.master {master} cannot be reached ({'; '.join(failures)}): "
            "start the master or fix spark.master in conveyor.yaml"
        )


def preflight(settings: SparkSection) -> str:
    """Everything checked before a JVM starts; returns the java executable."""
    require_pyspark()
    java = find_java()
    check_master(settings.master)
    return java


def default_log_path() -> Path:
    return Path(tempfile.gettempdir()) / "conveyor-spark" / f"driver-{os.getpid()}.log"


def session_conf(settings: SparkSection, log_path: Path) -> dict[str, str]:
    """The properties a session starts with: the user's, quiet progress bars, the log file."""
    conf = {"spark.ui.showConsoleProgress": "false"}
    conf.update({key: conf_text(value) for key, value in settings.conf.items()})
    conf["spark.driver.extraJavaOptions"] = (
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()} -Dconveyor.spark.log={log_path}"
    )
    return conf


def conf_text(value: Any) -> str:
    """A ``spark.conf`` value as Spark reads it (booleans in lower case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _jvm_reason(log_path: Path) -> str:
    """The line of the driver log that says why the JVM stopped (or its last line)."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log written"
    for marker in _JVM_REASONS:
        for line in lines:
            if marker in line:
                return line.removeprefix("Error: ")
    return lines[-1] if lines else "no log written"


def java_message(exc: BaseException) -> str:
    """The first line of a Java exception raised through Py4J or PySpark, without the Java class."""
    java = getattr(exc, "java_exception", None)
    text = str(java.getMessage()) if java is not None else str(exc)
    if not text or text == "None":
        text = str(exc)
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    for prefix in ("java.lang.IllegalArgumentException: ", "requirement failed: "):
        first = first.removeprefix(prefix)
    return first


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send this process's file descriptor 2 to ``path`` while the JVM is launched (it inherits it)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def start_session(settings: SparkSection, *, log_path: Path | None = None) -> SparkSession:
    """A new (or the running) Spark session on ``settings.master``; one-line errors."""
    preflight(settings)
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    log = log_path or default_log_path()
    log.parent.mkdir(parents=True, exist_ok=True)
    if settings.master.startswith("local") and not env_flag("PYSPARK_PYTHON"):
        # the Python workers run here: this Python (xgboost.spark's tasks import what this process
        # imports), not PySpark's default of whichever python3 is first on PATH
        os.environ["PYSPARK_PYTHON"] = sys.executable
    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    for key, value in session_conf(settings, log).items():
        builder = builder.config(key, value)
    try:
        with _stderr_to(log):
            return builder.getOrCreate()
    except PySparkException as exc:
        if "JAVA_GATEWAY_EXITED" in str(exc) or getattr(exc, "getErrorClass", lambda: "")() == (
            "JAVA_GATEWAY_EXITED"
        ):
            raise SparkSetupError(
                f"Spark could not start its JVM: {_jvm_reason(log)} "
                f"(check spark.conf in conveyor.yaml; Spark's log: {log})"
            ) from exc
        raise SparkSetupError(f"Spark refused to start: {java_message(exc)} (Spark's log: {log})") from exc
    except Py4JError as exc:
        raise SparkSetupError(
            f"Spark refused to start: {java_message(exc)} (check spark.conf in conveyor.yaml; "
            f"Spark's log: {log})"
        ) from exc


def active_session() -> SparkSession | None:
    """The session this process already runs (a test's shared session, a notebook's), or None."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    return SparkSession.getActiveSession()


@contextlib.contextmanager
def spark_session(settings: SparkSection) -> Iterator[SparkSession]:
    """The running session when there is one (left running), else a new one stopped afterwards."""
    running = active_session()
    if running is not None:
        yield running
        return
    session = start_session(settings)
    try:
        yield session
    finally:
        session.stop()


def spark_failure(exc: BaseException, what: str) -> OperationError:
    """A Spark job that failed at run time, as one line (exit 1)."""
    return OperationError(f"{what} failed on Spark: {java_message(exc)}")


__all__ = [
    "SparkSetupError",
    "active_session",
    "check_master",
    "conf_text",
    "find_java",
    "java_message",
    "preflight",
    "require_pyspark",
    "spark_failure",
    "spark_session",
    "start_session",
]
