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

import shlex
from dataclasses import dataclass
from pathlib import Path

from conveyor.config import Engine, Settings
from conveyor.errors import UsageError


@dataclass(frozen=True)
class SubmitCommand:
    """The ``spark-submit`` argument list (``args``) and its shell form (``shell``)."""

    args: list[str]

    @property
    def shell(self) -> str:
        return shlex.join(self.args)


def submit_args(
    settings: Settings, project_root: Path, command: tuple[str, ...] = ("train",)
) -> SubmitCommand:
    """``spark-submit`` running ``conveyor --project ROOT COMMAND`` against ``spark.master``."""
    if settings.model.engine is not Engine.SPARK:
        raise UsageError("model.engine is local: set model.engine: spark to train on a Spark cluster")
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
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["--conf", f"{key}={text}"]
    args += [str(program), "--project", str(project_root), *command]
    return SubmitCommand(args=args)


__all__ = ["SubmitCommand", "submit_args"]
