"""A canary step's record: both arms with their intervals, known answers."""

from __future__ import annotations

import pytest

from conveyor.config import CanarySection
from conveyor.deploy import ArmSample, analyse, arm_summary, step_record


def test_the_error_rate_interval_is_wilson_and_the_p99_interval_is_open_on_a_small_sample() -> None:
    summary = arm_summary(ArmSample("2", 100, 10, latencies_ms=[float(i) for i in range(1, 51)]), 0.95)
    assert summary["error_rate"] == 0.1
    # Wilson 95 % interval of 10 / 100 (Newcombe 1998, table I: 0.0552 to 0.1744)
    assert summary["error_rate_ci"] == pytest.approx([0.0552, 0.1744], abs=1e-4)
    assert summary["p50_ms"] == pytest.approx(25.5)
    assert summary["p99_ms"] == pytest.approx(49.51)
    low, high = summary["p99_ci_ms"]
    assert low is not None
    assert low <= summary["p99_ms"]
    assert high is None  # 50 requests cannot bound a 99th percentile from above


def test_a_step_record_holds_the_verdict_the_metrics_and_both_arms() -> None:
    settings = CanarySection(min_requests=10)
    stable = ArmSample("1", 2000, 20, latencies_ms=[10.0 + (i % 50) for i in range(1980)])
    candidate = ArmSample("2", 2000, 200, latencies_ms=[10.0 + (i % 50) for i in range(1800)])
    result = analyse(stable, candidate, settings)
    record = step_record(10, stable, candidate, result, settings)
    assert record["step"] == 10
    assert record["verdict"] == "fail"
    assert record["confidence"] == pytest.approx(1 - settings.alpha)
    assert [m["name"] for m in record["metrics"]] == ["error_rate", "latency"]
    assert record["arms"]["stable"]["version"] == "1"
    assert record["arms"]["candidate"]["error_rate"] == 0.1
    low, high = record["arms"]["candidate"]["error_rate_ci"]
    assert low < 0.1 < high
    p99_low, p99_high = record["arms"]["stable"]["p99_ci_ms"]
    assert p99_low <= record["arms"]["stable"]["p99_ms"] <= p99_high
