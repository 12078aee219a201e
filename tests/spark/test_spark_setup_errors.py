"""Bad Spark setups: one line on stderr naming the fix, exit 2 — never a Java stack trace.

Each case runs ``conveyor train`` on a project with ``model.engine: spark``: in a child process
where the case is about the process (no PySpark, no Java, a JVM that refuses its memory), in this
process (with the shared session) where it is about the configuration or the data.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from spark_support import SPARK_TESTS, SPARK_YAML, small_log

from conveyor.telemetry import TELEMETRY_OPT_OUT
from support import free_port

pytestmark = SPARK_TESTS

JAVA_WORDS = ("Traceback", "java.lang", "at org.apache", "Py4J", "\tat ")


def _project(root: Path, *, spark_yaml: str = SPARK_YAML, model: str = "") -> Path:
    (root / "data" / "raw").mkdir(parents=True)
    (root / "conveyor.yaml").write_text(
        "project: {name: shop}\n"
        f"model: {{engine: spark, embedding_dim: 8, epochs: 2{model}}}\n" + spark_yaml
    )
    small_log().write_parquet(root / "data" / "raw" / "interactions.parquet")
    return root


def _child(root: Path, env: dict[str, str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    args = ["--project", str(root), "train"]
    code = f"{prelude}import sys; from conveyor.cli import main; sys.exit(main({args!r}))"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def _one_line(stderr: str) -> str:
    """The one error line (MLflow's INFO lines when it creates a fresh store may come before it)."""
    assert not any(word in stderr for word in JAVA_WORDS), stderr
    errors = [line for line in stderr.splitlines() if line.startswith("conveyor:")]
    others = [line for line in stderr.splitlines() if line.strip() and " INFO mlflow" not in line]
    assert len(errors) == 1, stderr
    assert others == errors, stderr
    return errors[0]


def _env(**changes: str | None) -> dict[str, str]:
    env = {**os.environ, **TELEMETRY_OPT_OUT}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_no_pyspark_names_the_spark_extra(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")
    done = _child(root, _env(), prelude="import sys; sys.modules['pyspark'] = None; ")
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "PySpark is not installed" in line
    assert "pip install 'conveyor-ml[spark]'" in line


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"JAVA_HOME": "/nowhere"}, "JAVA_HOME=/nowhere holds no bin/java"),
        ({"JAVA_HOME": None, "PATH": str(Path(sys.executable).parent)}, "no java on PATH"),
    ],
    ids=["java-home-nowhere", "no-java-on-path"],
)
def test_no_java_says_which_java_spark_needs(
    tmp_path: Path, changes: dict[str, str | None], expected: str
) -> None:
    root = _project(tmp_path / "shop")
    done = _child(root, _env(**changes))
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert expected in line
    assert "Java 17 or 21" in line


def test_a_driver_memory_spark_refuses_is_one_line(tmp_path: Path) -> None:
    yaml = "spark:\n  master: local[1]\n  conf: {spark.driver.memory: 64m, spark.ui.enabled: false}\n"
    root = _project(tmp_path / "shop", spark_yaml=yaml)
    done = _child(root, _env())
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "Spark refused to start" in line
    assert "Insufficient driver memory" in line or "must be at least" in line
    assert "spark.conf" in line


def test_unreachable_master_is_one_line(spark, cli: Callable[..., object], tmp_path: Path) -> None:
    port = free_port()
    root = _project(tmp_path / "shop", spark_yaml=f"spark: {{master: 'spark://127.0.0.1:{port}'}}\n")
    result = cli("--project", root, "train")
    assert result.exit_code == 2
    line = _one_line(result.stderr)
    assert f"spark.master spark://127.0.0.1:{port} cannot be reached" in line


def test_missing_data_path_and_refused_rank_are_one_line(
    spark, cli: Callable[..., object], tmp_path: Path
) -> None:
    root = _project(tmp_path / "shop")
    missing = cli("--project", root, "train", "--data", "data/raw/nowhere.parquet")
    assert missing.exit_code == 2
    assert "nowhere.parquet: no such file" in _one_line(missing.stderr)
    rank = cli("--project", root, "train", "--param", "factors=0")
    assert rank.exit_code == 2
    assert "Spark's ALS refuses the model parameters" in _one_line(rank.stderr)


@pytest.mark.parametrize(
    ("spark_yaml", "expected"),
    [
        (
            "spark: {conf: {spark.driver.memory: lots}}",
            "spark.conf.spark.driver.memory: 'lots' is not a size",
        ),
        ("spark: {master: 'mesos://h:5050'}", "spark.master: 'mesos://h:5050' is not a Spark master URL"),
        ("spark: {conf: {spark.master: 'local[4]'}}", "spark.conf.spark.master: not accepted"),
    ],
    ids=["memory", "master", "master-in-conf"],
)
def test_settings_spark_cannot_use_are_config_errors(
    cli: Callable[..., object], tmp_path: Path, spark_yaml: str, expected: str
) -> None:
    root = _project(tmp_path / "shop", spark_yaml=spark_yaml + "\n")
    result = cli("--project", root, "config", "check")
    assert result.exit_code == 2
    assert expected in _one_line(result.stderr)


def test_submit_args_run_the_project_training_on_spark_master(
    cli: Callable[..., object], tmp_path: Path
) -> None:
    root = _project(
        tmp_path / "shop", spark_yaml="spark:\n  master: yarn\n  conf: {spark.executor.memory: 4g}\n"
    )
    result = cli("--project", root, "spark", "submit-args", "--json")
    assert result.exit_code == 0, result.stderr
    args = result.json()["args"]
    assert args[:7] == ["spark-submit", "--master", "yarn", "--deploy-mode", "client", "--name", "conveyor"]
    assert args[7:9] == ["--conf", "spark.executor.memory=4g"]
    assert Path(args[9]).name == "__main__.py"
    assert args[10:] == ["--project", str(root), "train"]
    local = _project(tmp_path / "local", model=", engine: local")
    refused = cli("--project", local, "spark", "submit-args")
    assert refused.exit_code == 2
    assert "set model.engine: spark" in _one_line(refused.stderr)
