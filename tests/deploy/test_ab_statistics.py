"""A/B statistics proven by simulation: A/A false wins at most alpha, a true 20 % lift found at power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from conveyor.deploy import (
    Arm,
    Verdict,
    always_valid_p,
    decide,
    sample_ratio_test,
    sample_size_per_arm,
    two_proportion_test,
)
from conveyor.errors import UsageError

ALPHA, POWER, MDE, RATIO, BASE = 0.05, 0.8, 0.2, 0.1, 0.05
REPS = 3000


def _required() -> dict[str, int]:
    return sample_size_per_arm(BASE, MDE, alpha=ALPHA, power=POWER, variant_ratio=RATIO)


def _simulate(rate_c: float, rate_v: float, n: dict[str, int], seed: int) -> list[tuple[Arm, Arm]]:
    rng = np.random.default_rng(seed)
    clicks_c = rng.binomial(n["control"], rate_c, REPS)
    clicks_v = rng.binomial(n["variant"], rate_v, REPS)
    return [
        (
            Arm("control", n["control"], n["control"], int(c)),
            Arm("variant", n["variant"], n["variant"], int(v)),
        )
        for c, v in zip(clicks_c, clicks_v, strict=True)
    ]


def test_two_proportion_test_known_answer():
    # 200/2000 vs 260/2000: pooled p = 0.115, se = sqrt(.115*.885*(2/2000)) = 0.010088
    res = two_proportion_test(Arm("c", 1, 2000, 200), Arm("v", 1, 2000, 260), alpha=0.05)
    assert res.z == pytest.approx(0.03 / math.sqrt(0.115 * 0.885 / 1000), rel=1e-9)
    assert res.p_value == pytest.approx(2 * stats.norm.sf(res.z), rel=1e-9)
    assert res.lift == pytest.approx(0.3)
    lo, hi = res.lift_ci
    assert lo < 0.3 < hi
    assert lo > 0  # significant lift: the CI excludes zero
    assert res.significant


def test_sample_size_matches_the_textbook_for_equal_split():
    # Equal split, 10 % → 12 %, alpha 0.05, power 0.8: 3,841 per arm (Fleiss without continuity correction)
    n = sample_size_per_arm(0.10, 0.2, alpha=0.05, power=0.8, variant_ratio=0.5)
    assert n["control"] == n["variant"]
    assert n["variant"] == pytest.approx(3841, abs=2)
    unequal = _required()
    assert unequal["control"] == pytest.approx(9 * unequal["variant"], rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline_rate": 0.0}, "baseline_rate"),
        ({"alpha": 1.5}, "alpha"),
        ({"variant_ratio": 1.0}, "variant_ratio"),
        ({"baseline_rate": 0.9, "min_detectable_effect": 0.5}, "min_detectable_effect"),
    ],
)
def test_sample_size_rejects_bad_input(kwargs, match):
    args = {
        "baseline_rate": 0.05,
        "min_detectable_effect": 0.2,
        "alpha": 0.05,
        "power": 0.8,
        "variant_ratio": 0.1,
    }
    with pytest.raises(UsageError, match=match):
        sample_size_per_arm(**{**args, **kwargs})


def test_aa_declares_a_winner_at_most_at_alpha():
    n = _required()
    runs = _simulate(BASE, BASE, n, seed=1)
    significant = sum(two_proportion_test(c, v, alpha=ALPHA).significant for c, v in runs)
    promoted = sum(
        decide(c, v, alpha=ALPHA, variant_ratio=RATIO, required_per_arm=n).verdict is Verdict.PROMOTE
        for c, v in runs
    )
    ci = stats.binomtest(significant, REPS).proportion_ci(0.99)
    # the rate of any significant difference is alpha: its 99 % CI must contain a value <= alpha
    assert ci.low <= ALPHA, (significant / REPS, ci)
    assert significant / REPS < ALPHA + 0.015
    # a promotion needs the variant to win: about alpha / 2
    assert stats.binomtest(promoted, REPS).proportion_ci(0.99).low <= ALPHA / 2


def test_true_twenty_percent_lift_found_at_the_stated_power():
    n = _required()
    runs = _simulate(BASE, BASE * 1.2, n, seed=2)
    wins = sum(
        decide(c, v, alpha=ALPHA, variant_ratio=RATIO, required_per_arm=n).verdict is Verdict.PROMOTE
        for c, v in runs
    )
    ci = stats.binomtest(wins, REPS).proportion_ci(0.99)
    assert ci.high >= POWER, (wins / REPS, ci)  # at least the stated power
    assert ci.low >= POWER - 0.05


def test_lift_interval_covers_the_true_lift():
    n = _required()
    runs = _simulate(BASE, BASE * 1.2, n, seed=3)
    covered = 0
    for c, v in runs:
        lo, hi = two_proportion_test(c, v, alpha=ALPHA).lift_ci
        covered += lo <= 0.2 <= hi
    ci = stats.binomtest(covered, REPS).proportion_ci(0.99)
    assert ci.low <= 1 - ALPHA <= ci.high + 0.01


def test_sample_ratio_mismatch_is_caught_and_blocks_promotion():
    assert not sample_ratio_test(9000, 1000, variant_ratio=0.1).mismatch
    srm = sample_ratio_test(8700, 1300, variant_ratio=0.1)
    assert srm.mismatch
    assert srm.observed_ratio == pytest.approx(0.13)
    control, variant = Arm("control", 8700, 90000, 4500), Arm("variant", 1300, 10000, 800)
    decision = decide(control, variant, alpha=ALPHA, variant_ratio=0.1, required_per_arm=None)
    assert decision.verdict is Verdict.KEEP_CONTROL
    assert "sample ratio mismatch" in decision.reason


def test_srm_false_alarm_rate_is_small():
    rng = np.random.default_rng(4)
    variant = rng.binomial(10_000, RATIO, 2000)
    alarms = sum(sample_ratio_test(10_000 - int(v), int(v), variant_ratio=RATIO).mismatch for v in variant)
    assert alarms <= 10  # expected 2 at p < 0.001


def test_decision_explains_itself():
    n = {"control": 50_000, "variant": 5000}
    lose = decide(
        Arm("c", 100, 50_000, 2500),
        Arm("v", 10, 5000, 180),
        alpha=ALPHA,
        variant_ratio=RATIO,
        required_per_arm=n,
    )
    assert lose.verdict is Verdict.KEEP_CONTROL
    assert "control wins significantly" in lose.reason
    flat = decide(
        Arm("c", 100, 1000, 50), Arm("v", 10, 100, 5), alpha=ALPHA, variant_ratio=RATIO, required_per_arm=n
    )
    assert flat.verdict is Verdict.KEEP_CONTROL
    assert flat.underpowered
    assert "no significant difference" in flat.reason
    assert "fewer impressions than planned" in flat.reason
    empty = decide(Arm("c", 0, 0, 0), Arm("v", 0, 0, 0), alpha=ALPHA, variant_ratio=RATIO, required_per_arm=n)
    assert empty.verdict is Verdict.KEEP_CONTROL
    assert "no data" in empty.reason
    assert lose.to_dict()["test"]["p_value"] < ALPHA


def test_always_valid_p_survives_peeking():
    # A/A with 20 looks: stopping at the first fixed-horizon p < alpha is wrong far more
    # often than alpha; stopping at the first always-valid p < alpha is not.
    n = _required()
    reps, looks = 600, 20
    rng = np.random.default_rng(5)
    step_c, step_v = n["control"] // looks, n["variant"] // looks
    c = rng.binomial(step_c, BASE, (reps, looks)).cumsum(axis=1)
    v = rng.binomial(step_v, BASE, (reps, looks)).cumsum(axis=1)
    naive = valid = 0
    for r in range(reps):
        arms = [
            (Arm("c", 0, step_c * (k + 1), int(c[r, k])), Arm("v", 0, step_v * (k + 1), int(v[r, k])))
            for k in range(looks)
        ]
        naive += any(two_proportion_test(a, b, alpha=ALPHA).significant for a, b in arms)
        valid += any(always_valid_p(a, b, tau=BASE * MDE) < ALPHA for a, b in arms)
    assert naive / reps > 2 * ALPHA  # the peeking problem, reproduced
    assert stats.binomtest(valid, reps).proportion_ci(0.99).low <= ALPHA
