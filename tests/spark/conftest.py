"""One Spark session for every Spark test: local[2], two shuffle partitions, no UI, a small driver.

The JVM takes seconds to start, so the session is made once per worker and shared; every Spark
test module sets ``pytestmark = SPARK_TESTS`` (spark_support.py) so that one worker runs them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from spark_support import TEST_SPARK


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from conveyor.spark import start_session

    log = tmp_path_factory.mktemp("spark-log") / "driver.log"
    session = start_session(TEST_SPARK, log_path=log)
    yield session
    session.stop()
