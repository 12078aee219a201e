"""What the Spark tests share: the marks, the test session's settings, a project's spark section."""

from __future__ import annotations

import pytest

from conveyor.config import SparkSection

# marked `spark` (`pytest -m spark` runs them alone) and in one xdist group, so that one worker —
# one JVM — runs every Spark test under --dist loadgroup
SPARK_TESTS = [pytest.mark.spark, pytest.mark.xdist_group("spark")]
TEST_SPARK = SparkSection(
    master="local[2]",
    conf={
        "spark.sql.shuffle.partitions": 2,
        "spark.default.parallelism": 2,
        "spark.ui.enabled": False,
        "spark.driver.memory": "1g",
        "spark.sql.session.timeZone": "UTC",
    },
)
SPARK_YAML = """\
spark:
  master: local[2]
  conf:
    spark.sql.shuffle.partitions: 2
    spark.default.parallelism: 2
    spark.ui.enabled: false
    spark.driver.memory: 1g
"""
