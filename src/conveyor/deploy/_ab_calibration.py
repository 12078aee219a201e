"""Error rates of the A/B test, users as the unit, by simulation on known-answer data.

The one simulation behind both ``benchmarks/ab_calibration.py`` (the tables in
``docs/statistics.md``) and ``tests/deploy/test_ab_statistics.py`` (small, fast runs of the
same cells), as :mod:`conveyor.evaluation._calibration` is for the quality gates.

Correlated impressions with a known answer: user u has a click propensity
p_u ~ Beta(0.5, 9.5) (mean 0.05, intra-user correlation 1/11) and sees
n_u = 1 + Poisson(19) recommendations (mean 20); each answer is clicked with
probability p_u. A variant with a true relative lift L multiplies every
propensity by 1 + L, so its expected CTR is exactly (1 + L) × 0.05. The
variant gets 10 % of the users.

Each experiment is planned as ``conveyor ab start`` plans it (a baseline of
10,000 users of the same law → :func:`plan_from_baseline`, MDE 0.2, alpha 0.05,
power 0.8) and decided as ``conveyor ab conclude`` decides it (:func:`decide`,
the delta-method test on users). The impression-level two-proportion test — the
test Conveyor used before, which counts every impression as independent — is
run on the same data for comparison. Peeking: equally spaced looks at the
always-valid p-value (``ab status``) and at the fixed-horizon p-value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conveyor.deploy._abtest import (
    Arm,
    Decision,
    Verdict,
    always_valid_p,
    decide,
    plan_from_baseline,
    ratio_test,
    two_proportion_test,
)

ALPHA, POWER, MDE, RATIO = 0.05, 0.8, 0.2, 0.1
BASE, CONCENTRATION, MEAN_IMPRESSIONS = 0.05, 10.0, 20
BASELINE_USERS = 10_000
LOOKS = 20


def draw_users(rng: np.random.Generator, users: int, lift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-user (impressions, clicked impressions) of ``users`` correlated users."""
    propensity = rng.beta(BASE * CONCENTRATION, (1 - BASE) * CONCENTRATION, users) * (1 + lift)
    impressions = 1 + rng.poisson(MEAN_IMPRESSIONS - 1, users)
    return impressions, rng.binomial(impressions, np.minimum(propensity, 1.0))


def baseline(seed: int = 0) -> Arm:
    """The traffic ``ab start`` plans from: :data:`BASELINE_USERS` users of the same law."""
    return Arm.from_users("baseline", *draw_users(np.random.default_rng(seed), BASELINE_USERS))


def plan(seed: int = 0) -> dict[str, int] | None:
    """The users per arm ``ab start`` plans from the baseline (None: it gave no plan)."""
    return plan_from_baseline(baseline(seed), MDE, alpha=ALPHA, power=POWER, variant_ratio=RATIO)


@dataclass(frozen=True)
class Experiment:
    """What each test says about one simulated experiment at the planned size."""

    decision: Decision  # `conveyor ab conclude`
    users_significant: bool  # the delta-method test on users, two-sided
    impressions_significant: bool  # the two-proportion z-test on impressions (the old unit)

    @property
    def promoted(self) -> bool:
        return self.decision.verdict is Verdict.PROMOTE


def experiment(seed: int, need: dict[str, int], lift: float) -> Experiment:
    """One experiment with ``need`` users per arm and a true relative ``lift`` of the variant."""
    rng = np.random.default_rng(seed)
    control = Arm.from_users("control", *draw_users(rng, need["control"]))
    variant = Arm.from_users("variant", *draw_users(rng, need["variant"], lift))
    return Experiment(
        decision=decide(control, variant, alpha=ALPHA, variant_ratio=RATIO, required_per_arm=need),
        users_significant=ratio_test(control, variant, alpha=ALPHA).significant,
        impressions_significant=two_proportion_test(control, variant, alpha=ALPHA).significant,
    )


def peeking(seed: int, need: dict[str, int], looks: int = LOOKS) -> tuple[bool, bool]:
    """A/A with ``looks`` looks: (fixed-horizon p ever < alpha, always-valid p ever < alpha)."""
    rng = np.random.default_rng(seed)
    c_n, c_c = draw_users(rng, need["control"])
    v_n, v_c = draw_users(rng, need["variant"])
    naive = valid = False
    for look in range(1, looks + 1):
        kc, kv = need["control"] * look // looks, need["variant"] * look // looks
        control, variant = Arm.from_users("c", c_n[:kc], c_c[:kc]), Arm.from_users("v", v_n[:kv], v_c[:kv])
        naive |= ratio_test(control, variant, alpha=ALPHA).significant
        valid |= always_valid_p(control, variant, tau=BASE * MDE) < ALPHA
    return naive, valid


__all__ = ["Experiment", "baseline", "draw_users", "experiment", "peeking", "plan"]
