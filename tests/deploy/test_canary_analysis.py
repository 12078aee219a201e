"""Canary analysis: healthy canaries rarely fail, broken or slow ones do, thin data is inconclusive."""

from __future__ import annotations

import numpy as np
from scipy import stats

from conveyor.config import CanarySection
from conveyor.deploy import ArmSample, CanaryVerdict, analyse

SETTINGS = CanarySection()  # alpha 0.05, min 200 requests, +1 % errors, p99 ratio 1.5
REPS = 400


def _arm(
    rng: np.random.Generator, version: str, n: int, err: float, scale: float, ctr: float | None = None
) -> ArmSample:
    latencies = rng.lognormal(np.log(20 * scale), 0.4, n)
    clicks = int(rng.binomial(n, ctr)) if ctr is not None else 0
    return ArmSample(version, n, int(rng.binomial(n, err)), latencies.tolist(), n if ctr else 0, clicks)


def test_too_few_requests_is_inconclusive_not_pass():
    rng = np.random.default_rng(0)
    result = analyse(_arm(rng, "1", 5000, 0.0, 1), _arm(rng, "2", 50, 1.0, 5), SETTINGS)
    assert result.verdict is CanaryVerdict.INCONCLUSIVE
    assert "too few requests" in result.reason


def test_healthy_canary_false_fail_rate_at_most_alpha():
    rng = np.random.default_rng(1)
    fails = sum(
        analyse(
            _arm(rng, "1", 2000, 0.01, 1, ctr=0.05), _arm(rng, "2", 400, 0.01, 1, ctr=0.05), SETTINGS
        ).verdict
        is CanaryVerdict.FAIL
        for _ in range(REPS)
    )
    ci = stats.binomtest(fails, REPS).proportion_ci(0.99)
    assert ci.low <= SETTINGS.alpha, (fails / REPS, ci)


def test_erroring_candidate_fails():
    rng = np.random.default_rng(2)
    fails = sum(
        analyse(_arm(rng, "1", 2000, 0.005, 1), _arm(rng, "2", 400, 0.05, 1), SETTINGS).verdict
        is CanaryVerdict.FAIL
        for _ in range(REPS)
    )
    assert stats.binomtest(fails, REPS).proportion_ci(0.99).low >= 0.9
    broken = analyse(_arm(rng, "1", 1000, 0.0, 1), ArmSample("2", 300, 300, [1.0] * 300), SETTINGS)
    assert broken.verdict is CanaryVerdict.FAIL
    assert broken.reason.startswith("error_rate")


def test_slow_candidate_fails_on_latency_but_a_tiny_shift_does_not():
    rng = np.random.default_rng(3)
    slow = sum(
        analyse(_arm(rng, "1", 2000, 0.0, 1), _arm(rng, "2", 400, 0.0, 2), SETTINGS).verdict
        is CanaryVerdict.FAIL
        for _ in range(REPS // 4)
    )
    assert slow == REPS // 4
    result = analyse(_arm(rng, "1", 20000, 0.0, 1), _arm(rng, "2", 20000, 0.0, 1.05), SETTINGS)
    latency = next(m for m in result.metrics if m.name == "latency")
    assert latency.p_value is not None
    assert latency.p_value < 0.01  # significant ...
    assert result.verdict is CanaryVerdict.PASS  # ... but 5 % is below the p99 ratio limit


def test_lower_click_through_fails():
    rng = np.random.default_rng(4)
    result = analyse(
        _arm(rng, "1", 20000, 0.0, 1, ctr=0.10), _arm(rng, "2", 5000, 0.0, 1, ctr=0.06), SETTINGS
    )
    assert result.verdict is CanaryVerdict.FAIL
    assert [m.name for m in result.metrics if m.verdict is CanaryVerdict.FAIL] == ["ctr"]
    assert result.to_dict()["verdict"] == "fail"


def test_candidate_losing_its_share_fails_and_a_fair_share_passes():
    rng = np.random.default_rng(5)
    stable, lost = _arm(rng, "1", 1800, 0.0, 1), _arm(rng, "2", 250, 0.0, 1)  # share 0.5 configured
    result = analyse(stable, lost, SETTINGS, expected_share=0.5)
    assert result.verdict is CanaryVerdict.FAIL
    assert "traffic_share" in result.reason
    fair = analyse(_arm(rng, "1", 1000, 0.0, 1), _arm(rng, "2", 980, 0.0, 1), SETTINGS, expected_share=0.5)
    assert fair.verdict is CanaryVerdict.PASS
