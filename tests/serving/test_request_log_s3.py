"""The request log in S3 (moto's server): parts per replica under date/hour partitions, read back whole."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.requestlog import PREDICTIONS, RequestLog, S3Location, read_request_log, scan_request_log
from services import S3

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("services")]


@pytest.fixture
def s3_env(s3: S3, monkeypatch) -> S3:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return s3


def _log(location: S3Location, n: int, dropped: list[int] | None = None) -> None:
    log = RequestLog(
        location,
        flush_rows=4,
        flush_seconds=60,
        on_dropped=(lambda _kind, count: dropped.append(count)) if dropped is not None else None,
    )
    log.start()
    for i in range(n):
        log.log_prediction(request_id=f"r{i}", env="production", model_version="1", variant=None,
                           endpoint="/predict", user_id=i, features=[{"x": i}], output={"p": [0.5]},
                           latency_ms=1.0, status=200)  # fmt: skip
        if i % 4 == 3:
            log.flush()
    log.close()


def test_two_replicas_write_apart_and_the_reader_sees_every_record(s3_env: S3) -> None:
    bucket = s3_env.create_bucket("rl-unit")
    location = S3Location(f"{bucket}/team/production", s3_env.endpoint_url)
    _log(location, 10)  # replica one: parts of 4, 4 and 2 records
    _log(location, 7)  # replica two
    keys = [o["Key"] for o in s3_env.client().list_objects_v2(Bucket="rl-unit")["Contents"]]
    now = datetime.now(UTC)
    part = re.compile(r"team/production/date=\d{4}-\d{2}-\d{2}/hour=\d{2}/predictions-[\w-]+-\d{6}\.parquet")
    assert all(part.fullmatch(k) for k in keys), keys
    replicas = {k.rsplit("/", 1)[1].rsplit("-", 1)[0] for k in keys}
    assert len(replicas) == 2
    assert len(keys) == 3 + 2
    predictions, feedback = read_request_log(location)
    assert predictions.height == 17
    assert sorted(predictions["request_id"].to_list()) == sorted(
        [f"r{i}" for i in range(10)] + [f"r{i}" for i in range(7)]
    )
    assert feedback.height == 0
    # the window reaches the reader's listing: an hour with no part reads nothing
    later = scan_request_log(location, PREDICTIONS, ("ts",), since=now + timedelta(hours=2))
    assert later.height == 0
    assert scan_request_log(location, PREDICTIONS, ("ts",), since=now - timedelta(hours=1)).height == 17


def test_a_refused_part_is_counted_as_dropped_and_serving_goes_on(s3_env: S3) -> None:
    dropped: list[int] = []
    _log(S3Location("s3://no-such-bucket-here/x", s3_env.endpoint_url), 6, dropped)
    assert sum(dropped) == 6


def test_an_empty_prefix_reads_as_empty_frames_with_the_schema(s3_env: S3) -> None:
    bucket = s3_env.create_bucket("rl-empty")
    predictions, feedback = read_request_log(S3Location(f"{bucket}/nothing/production", s3_env.endpoint_url))
    assert predictions.height == feedback.height == 0
    assert "outcome" in predictions.columns
