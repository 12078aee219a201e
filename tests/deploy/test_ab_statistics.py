"""A/B statistics, users as the unit, proven by simulation on correlated impressions.

Known answer: user u clicks each of their n_u answers with propensity p_u ~
Beta(0.5, 9.5) (mean CTR 0.05, very different users); a variant with a true
lift L multiplies every propensity by 1 + L. The per-user (delta-method) test
declares A/A winners at about alpha and finds a true 20 % lift at the planned
power; the impression-level test on the same data declares A/A winners several
times too often. The simulation is :mod:`conveyor.deploy._ab_calibration`, the one
``benchmarks/ab_calibration.py`` runs for the full tables; here in small cells.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from conveyor.deploy import (
    Arm,
    Verdict,
    decide,
    ratio_test,
    sample_ratio_test,
    sample_size_per_arm,
)
from conveyor.deploy import _ab_calibration as sim
from conveyor.deploy._ab_calibration import ALPHA, BASE, MDE, POWER, RATIO
from conveyor.errors import UsageError

REPS = 600


@pytest.fixture(scope="module")
def plan() -> dict[str, int]:
    planned = sim.plan(seed=0)
    assert planned is not None
    return planned


def _experiments(plan: dict[str, int], lift: float, seed: int) -> list[sim.Experiment]:
    return [sim.experiment(seed * 1_000_000 + i, plan, lift) for i in range(REPS)]


def _ci(hits: int, runs: int = REPS) -> tuple[float, float]:
    ci = stats.binomtest(hits, runs).proportion_ci(0.99)
    return ci.low, ci.high


def test_arm_statistics_known_answer():
    # users: (2 answers, 1 clicked), (4, 0), (6, 3): ctr 4/12; linearised values c - r n = 1/3, -4/3, 1
    arm = Arm.from_users("a", [2, 4, 6], [1, 0, 3])
    assert (arm.users, arm.impressions, arm.clicks) == (3, 12, 4)
    residuals = np.array([1 - 2 / 3, 0 - 4 / 3, 3 - 2])
    assert arm.user_variance == pytest.approx(residuals.var(ddof=1) / 4**2)
    assert arm.ctr_variance == pytest.approx(arm.user_variance / 3)
    assert arm.design_effect == pytest.approx(arm.ctr_variance / ((1 / 3) * (2 / 3) / 12))
    # one answer per user: the delta-method variance is the binomial one (ddof aside)
    single = Arm.from_users("s", [1] * 100, [1] * 30 + [0] * 70)
    assert single.ctr_variance == pytest.approx(0.3 * 0.7 / 100 * 100 / 99)


def test_ratio_test_known_answer():
    control = Arm.from_users("control", [10] * 50, [1] * 50)  # every user exactly 10 %
    variant = Arm.from_users("variant", [10] * 50, [1, 3] * 25)  # half 10 %, half 30 %
    res = ratio_test(control, variant, alpha=0.05)
    assert res.control_rate == pytest.approx(0.1)
    assert res.variant_rate == pytest.approx(0.2)
    # control variance 0; variant per-user values 0.1 / 0.3: variance 0.01 * 50/49 per user, / 50 users
    se = math.sqrt(0.01 * 50 / 49 / 50)
    assert res.z == pytest.approx(0.1 / se)
    assert res.p_value == pytest.approx(2 * stats.norm.sf(0.1 / se))
    assert res.unit == "users"
    assert (res.control_users, res.variant_users) == (50, 50)
    assert res.lift == pytest.approx(1.0)
    assert res.lift_ci[0] < 1.0 < res.lift_ci[1]


@pytest.mark.parametrize(
    ("impressions", "clicks", "match"),
    [([1, 2], [2, 0], "clicks <= impressions"), ([1, 2], [0], "one value per user"), ([-1], [0], "0 <=")],
)
def test_arm_rejects_impossible_counts(impressions, clicks, match):
    with pytest.raises(UsageError, match=match):
        Arm.from_users("a", impressions, clicks)


def test_sample_size_matches_the_textbook_and_scales_with_the_design_effect():
    # One answer per user, design effect 1: 10 % → 12 %, alpha 0.05, power 0.8, equal split:
    # (1.96 + 0.8416)² × (0.09 + 0.1056) / 0.02² = 3,839 (unpooled; Fleiss' pooled form gives 3,841)
    n = sample_size_per_arm(0.10, 0.2, alpha=0.05, power=0.8, variant_ratio=0.5)
    assert n["control"] == n["variant"] == pytest.approx(3839, abs=1)
    # 20 independent answers per user (design effect 1): a twentieth of the users
    users = sample_size_per_arm(0.10, 0.2, alpha=0.05, power=0.8, variant_ratio=0.5, impressions_per_user=20)
    assert users["variant"] == pytest.approx(3839 / 20, abs=1)
    # correlated answers need more users, at least in proportion to the design effect
    correlated = sample_size_per_arm(
        0.10, 0.2, alpha=0.05, power=0.8, variant_ratio=0.5, design_effect=3.0, impressions_per_user=20
    )
    assert correlated["variant"] >= 3 * users["variant"]
    unequal = sample_size_per_arm(BASE, MDE, alpha=ALPHA, power=POWER, variant_ratio=RATIO)
    assert unequal["control"] == pytest.approx(9 * unequal["variant"], rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline_rate": 0.0}, "baseline_rate"),
        ({"alpha": 1.5}, "alpha"),
        ({"variant_ratio": 1.0}, "variant_ratio"),
        ({"baseline_rate": 0.9, "min_detectable_effect": 0.5}, "min_detectable_effect"),
        ({"design_effect": 0.0}, "design_effect"),
        ({"impressions_per_user": 0.5}, "impressions_per_user"),
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


def test_aa_on_correlated_users_holds_alpha_where_the_impression_test_does_not(plan):
    runs = _experiments(plan, 0.0, seed=1)
    per_user = sum(run.users_significant for run in runs)
    per_impression = sum(run.impressions_significant for run in runs)
    low, high = _ci(per_user)
    assert low <= ALPHA <= high + 0.01, per_user / REPS
    # the old unit: the design effect (about 3 here) makes it wrong several times too often
    assert _ci(per_impression)[0] > 2 * ALPHA, per_impression / REPS
    promoted = sum(run.promoted for run in runs)
    assert _ci(promoted)[0] <= ALPHA / 2  # a promotion needs the variant to win: about alpha / 2


def test_true_twenty_percent_lift_found_at_the_planned_power(plan):
    decisions = [run.decision for run in _experiments(plan, MDE, seed=2)]
    wins = sum(d.verdict is Verdict.PROMOTE for d in decisions)
    low, high = _ci(wins)
    assert low <= POWER + 0.03, wins / REPS
    assert high >= POWER - 0.03, wins / REPS
    assert not any(d.underpowered for d in decisions)
    # the lift interval covers the true lift at about its nominal rate
    covered = sum(d.test is not None and d.test.lift_ci[0] <= MDE <= d.test.lift_ci[1] for d in decisions)
    assert _ci(covered)[0] <= 1 - ALPHA <= _ci(covered)[1] + 0.01


def test_sample_ratio_mismatch_is_caught_and_blocks_promotion():
    assert not sample_ratio_test(9000, 1000, variant_ratio=0.1).mismatch
    srm = sample_ratio_test(8700, 1300, variant_ratio=0.1)
    assert srm.mismatch
    assert srm.observed_ratio == pytest.approx(0.13)
    control = Arm.from_users("control", [10] * 8700, [1] * 8700)
    variant = Arm.from_users("variant", [10] * 1300, [2] * 1300)
    decision = decide(control, variant, alpha=ALPHA, variant_ratio=0.1, required_per_arm=None)
    assert decision.verdict is Verdict.KEEP_CONTROL
    assert "sample ratio mismatch" in decision.reason


def test_srm_false_alarm_rate_is_small():
    rng = np.random.default_rng(4)
    variant = rng.binomial(10_000, RATIO, 2000)
    alarms = sum(sample_ratio_test(10_000 - int(v), int(v), variant_ratio=RATIO).mismatch for v in variant)
    assert alarms <= 10  # expected 2 at p < 0.001


def test_decision_explains_itself_in_users():
    need = {"control": 900, "variant": 100}
    rng = np.random.default_rng(6)
    control = Arm.from_users("control", [10] * 900, rng.binomial(10, 0.3, 900))
    lose = decide(
        control,
        Arm.from_users("variant", [10] * 100, rng.binomial(10, 0.1, 100)),
        alpha=ALPHA,
        variant_ratio=RATIO,
        required_per_arm=need,
    )
    assert lose.verdict is Verdict.KEEP_CONTROL
    assert "control wins significantly" in lose.reason
    assert "100 vs 900 users" in lose.reason
    assert lose.to_dict()["unit"] == "users"
    assert lose.to_dict()["test"]["p_value"] < ALPHA
    flat = decide(
        Arm.from_users("control", [10] * 300, [3] * 300),
        Arm.from_users("variant", [10] * 33, [3] * 33),
        alpha=ALPHA,
        variant_ratio=RATIO,
        required_per_arm=need,
    )
    assert flat.verdict is Verdict.KEEP_CONTROL
    assert flat.underpowered
    assert "fewer users than planned (control 300/900, variant 33/100)" in flat.reason
    few = decide(
        control,
        Arm.from_users("v", [5] * 3, [1] * 3),
        alpha=ALPHA,
        variant_ratio=RATIO,
        required_per_arm=need,
    )
    assert few.verdict is Verdict.KEEP_CONTROL
    assert "too few users" in few.reason


def test_always_valid_p_survives_peeking(plan):
    # A/A with 20 looks: stopping at the first fixed-horizon p < alpha is wrong far more
    # often than alpha; stopping at the first always-valid p < alpha is not.
    reps = 150
    peeks = [sim.peeking(5_000_000 + i, plan, looks=20) for i in range(reps)]
    naive = sum(n for n, _ in peeks)
    valid = sum(v for _, v in peeks)
    assert naive / reps > 2 * ALPHA  # the peeking problem, reproduced
    assert _ci(valid, reps)[0] <= ALPHA


def test_request_log_is_counted_per_user():
    """Known log: users a (3 answers, 1 clicked twice) and b (2 answers, 1 clicked + 1 click by user only)."""
    import polars as pl

    from conveyor.deploy._observations import _per_user

    answers = pl.DataFrame(
        {
            "request_id": ["r1", "r2", "r3", "r4", "r5", "r6"],
            "user_id": ["a", "a", "a", "b", "b", "c"],
            "model_version": ["1", "1", "1", "1", "1", "2"],
        }
    )
    feedback = pl.DataFrame(
        {
            "request_id": ["r1", "r1", "r4", None, "r6"],
            "user_id": ["a", "a", "b", "b", "c"],
            "event": ["click"] * 5,
            "model_version": ["1", "1", "1", "1", "2"],
        }
    )
    arm = Arm.from_users("control", *_per_user(answers, feedback, "1"))
    assert (arm.users, arm.impressions, arm.clicks) == (2, 5, 3)
    assert arm.impressions_sq == 3**2 + 2**2
    assert arm.clicks_sq == 1**2 + 2**2
    everyone = Arm.from_users("baseline", *_per_user(answers, feedback, None))
    assert (everyone.users, everyone.impressions, everyone.clicks) == (3, 6, 4)
