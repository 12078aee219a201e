"""``spark-submit`` arguments that run a project's training on a cluster (``conveyor spark submit-args``).

The driver runs where the command runs (``--deploy-mode client``): it reads the
project (its ``conveyor.yaml``, data, MLflow store) and trains with
``model.engine: spark``, whose ALS work runs on the cluster's executors; the
fitted factors come back to the driver and are saved and registered as on one
machine. The properties are ``spark.conf`` of ``conveyor.yaml``; the program is
Conveyor's own ``__main__`` (``python -m conveyor``), so the arguments need no
script of their own.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conveyor.config import Engine, Settings
from conveyor.errors import UsageError
from conveyor.spark._session import INSTALL_EXTRA, SparkSetupError, conf_text, find_java


@dataclass(frozen=True)
class SubmitCommand:
    """The ``spark-submit`` argument list (``args``) and its shell form (``shell``)."""

    args: list[str]

    @property
    def shell(self) -> str:
        return shlex.join(self.args)


def require_spark_engine(settings: Settings) -> None:
    """UsageError unless ``model.engine`` is spark (a cluster has nothing to train otherwise)."""
    if settings.model.engine is not Engine.SPARK:
        raise UsageError("model.engine is local: set model.engine: spark to train on a Spark cluster")


def submit_args(
    settings: Settings, project_root: Path, command: tuple[str, ...] = ("train",)
) -> SubmitCommand:
    """``spark-submit`` running ``conveyor --project ROOT COMMAND`` against ``spark.master``."""
    require_spark_engine(settings)
    import conveyor

    program = Path(conveyor.__file__).with_name("__main__.py")
    args = [
        "spark-submit",
        "--master",
        settings.spark.master,
        "--deploy-mode",
        "client",
        "--name",
        settings.spark.app_name,
    ]
    for key, value in sorted(settings.spark.conf.items()):
        args += ["--conf", f"{key}={conf_text(value)}"]
    args += [str(program), "--project", str(project_root), *command]
    return SubmitCommand(args=args)


def spark_submit_program() -> str:
    """The ``spark-submit`` launcher: on PATH, else beside this Python (PySpark's pip install puts it
    there); UsageError naming the ``spark`` extra when there is none."""
    found = shutil.which("spark-submit") or shutil.which(
        "spark-submit", path=str(Path(sys.executable).parent)
    )
    if found is None:
        raise SparkSetupError(
            f"spark-submit is not installed: it comes with the spark extra ({INSTALL_EXTRA})"
        )
    return found


def run_submit(command: SubmitCommand) -> int:
    """Run ``command`` with the ``spark-submit`` found here; its exit status (the conveyor command's).

    The driver's Python is this one (``PYSPARK_DRIVER_PYTHON``, when unset): the client-mode driver runs
    here and must import Conveyor; on a ``local`` master the executors are here too (``PYSPARK_PYTHON``).
    """
    find_java()  # one line before spark-submit's own "JAVA_HOME is not set"
    env = dict(os.environ)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if command.args[command.args.index("--master") + 1].startswith("local"):
        env.setdefault("PYSPARK_PYTHON", sys.executable)
    done = subprocess.run([spark_submit_program(), *command.args[1:]], env=env, check=False)
    return done.returncode


__all__ = ["SubmitCommand", "require_spark_engine", "run_submit", "spark_submit_program", "submit_args"]
