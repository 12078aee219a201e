"""The statistics of an A/B test on click-through rate, with the user as the unit.

Users are assigned to arms, and one user sees many recommendations: the
impressions of one user are correlated (some users click a lot, most rarely),
so a test that counts impressions as independent draws underestimates the
variance and declares winners far more often than alpha. Every statistic here
treats the user as the independent unit and the click-through rate (clicked
answers ÷ answers, summed over users) as a ratio of two per-user means, whose
variance comes from the delta method (Deng, Knoblich & Lu, "Applying the
Delta Method in Metric Analytics", KDD 2018; one implementation,
``conveyor.deploy._ratio``, which the canary's error rate uses too).

A fixed-horizon design, decided once by ``conveyor ab conclude``:

* :func:`sample_size_per_arm` — before the test starts, the **users** each arm
  needs to find the configured relative lift at ``alpha`` (two-sided) with
  ``power`` for an unequal split, from the per-user variance of the baseline
  traffic (its impressions per user and design effect: how much the per-user
  correlation inflates the variance over the binomial one).
* :func:`ratio_test` — the delta-method z-test of the two click-through rates,
  two-sided p-value, and the confidence interval of the relative lift (delta
  method on the log of the ratio of the two rates).
* :func:`sample_ratio_test` — the sample-ratio-mismatch check: a chi-square
  goodness-of-fit test of the users per arm against the configured ratio.
* :func:`always_valid_p` — for interim looks (``ab status``): the mixture
  sequential probability ratio test p-value on the same per-user variance.
* :func:`decide` — the one decision: promote only on a significant win.

:func:`two_proportion_test` is the impression-level test, kept as the
reference the simulations compare with (``benchmarks/ab_calibration.py``);
no decision uses it.

The formulas are hand-written on top of ``scipy.stats.norm`` and
``scipy.stats.chisquare``: they are a dozen lines, and statsmodels (which has
the proportion formulas but not the delta method for ratio metrics) would be a
large dependency for them alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from scipy import stats

from conveyor.deploy._ratio import UnitRatio, unit_variance
from conveyor.errors import UsageError

SRM_ALPHA = 0.001  # the usual threshold of a sample-ratio-mismatch alarm
MIN_USERS_PER_ARM = 20  # below this the per-user variance (and the normal approximation) is not trusted
UNIT = "users"


@dataclass(frozen=True)
class Arm:
    """One arm's per-user sufficient statistics.

    ``impressions`` and ``clicks`` are totals over the arm's users (clicks are
    clicked answers); the sums of squares and of products give the per-user
    variances and covariance the delta method needs. Build it from per-user
    counts with :meth:`from_users`.
    """

    name: str
    users: int
    impressions: int
    clicks: int
    impressions_sq: float  # Σ impressions_u²
    clicks_sq: float  # Σ clicks_u²
    cross: float  # Σ impressions_u · clicks_u

    @classmethod
    def from_users(
        cls, name: str, impressions: Sequence[int] | np.ndarray, clicks: Sequence[int] | np.ndarray
    ) -> Arm:
        """The arm of users with ``impressions[u]`` answers of which ``clicks[u]`` were clicked."""
        n = np.asarray(impressions, dtype=np.float64)
        c = np.asarray(clicks, dtype=np.float64)
        if n.shape != c.shape or n.ndim != 1:
            raise UsageError(f"arm {name!r}: impressions and clicks need one value per user")
        if np.any(n < 0) or np.any(c < 0) or np.any(c > n):
            raise UsageError(f"arm {name!r}: each user needs 0 <= clicks <= impressions")
        return cls(
            name,
            int(n.size),
            int(n.sum()),
            int(c.sum()),
            float(n @ n),
            float(c @ c),
            float(n @ c),
        )

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else math.nan

    @property
    def impressions_per_user(self) -> float:
        return self.impressions / self.users if self.users else math.nan

    @property
    def ratio(self) -> UnitRatio:
        """The click-through rate as a ratio of per-user sums (:mod:`conveyor.deploy._ratio`)."""
        return UnitRatio(
            self.users, self.impressions, self.clicks, self.impressions_sq, self.clicks_sq, self.cross
        )

    @property
    def user_variance(self) -> float:
        """Variance of one user's linearised CTR, ``(clicks_u − ctr · impressions_u) / mean impressions``."""
        r = self.ratio
        return unit_variance(r.units, r.denominator, r.numerator, r.denominator_sq, r.numerator_sq, r.cross)

    @property
    def ctr_variance(self) -> float:
        """Delta-method variance of :attr:`ctr`, users as the independent unit."""
        return self.ratio.variance

    @property
    def design_effect(self) -> float:
        """:attr:`ctr_variance` over the binomial variance that treats impressions as independent."""
        return self.ratio.design_effect


@dataclass(frozen=True)
class RatioTest:
    """Result of the per-user (delta-method) test of variant against control."""

    control_rate: float
    variant_rate: float
    difference: float
    lift: float  # relative: variant_rate / control_rate - 1
    lift_ci: tuple[float, float]  # confidence interval of ``lift`` at 1 - alpha
    z: float
    p_value: float  # two-sided
    alpha: float
    unit: str
    control_users: int
    variant_users: int
    design_effect: float  # variance over the impression-level (binomial) one, both arms

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


@dataclass(frozen=True)
class ProportionTest:
    """Result of the impression-level two-proportion test (the reference, not a decision)."""

    control_rate: float
    variant_rate: float
    difference: float
    lift: float
    lift_ci: tuple[float, float]
    z: float
    p_value: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


@dataclass(frozen=True)
class SampleRatioTest:
    expected_ratio: float  # configured share of the variant
    observed_ratio: float
    chi2: float
    p_value: float
    mismatch: bool


class Verdict(StrEnum):
    PROMOTE = "promote"  # the variant won significantly
    KEEP_CONTROL = "keep-control"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    test: RatioTest | None
    srm: SampleRatioTest
    required_per_arm: dict[str, int] | None  # users
    underpowered: bool
    unit: str = UNIT

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "unit": self.unit,
            "test": asdict(self.test) if self.test else None,
            "srm": asdict(self.srm),
            "required_per_arm": self.required_per_arm,
            "underpowered": self.underpowered,
        }


def _check_rate(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise UsageError(f"{name} must be in (0, 1), got {value!r}")


def sample_size_per_arm(
    baseline_rate: float,
    min_detectable_effect: float,
    *,
    alpha: float,
    power: float,
    variant_ratio: float,
    design_effect: float = 1.0,
    impressions_per_user: float = 1.0,
) -> dict[str, int]:
    """Users each arm needs to detect a relative lift ``min_detectable_effect``.

    Two-sided test at ``alpha``, the variant receiving ``variant_ratio`` of
    the users (Chow, Shao & Wang, *Sample Size Calculations in Clinical
    Research*, §4.2, unequal allocation), on the per-user variance of the
    click-through rate. That variance is the binomial one of
    ``impressions_per_user`` independent answers plus the excess the baseline
    showed — ``design_effect`` is their ratio (Kish) — and the excess, which
    comes from users' different propensities, is assumed to grow with the
    square of the lift (every user's rate times 1 + effect). The variance is
    taken under the alternative for both terms (the unpooled form), as the test
    estimates each arm's variance separately. With one answer per user and a
    design effect of 1 it is the textbook two-proportion sample size (unpooled,
    within a few units of the pooled one).
    """
    _check_rate("baseline_rate", baseline_rate)
    _check_rate("alpha", alpha)
    _check_rate("power", power)
    _check_rate("variant_ratio", variant_ratio)
    if not (math.isfinite(design_effect) and design_effect > 0):
        raise UsageError(f"design_effect must be a positive number, got {design_effect!r}")
    if not (math.isfinite(impressions_per_user) and impressions_per_user >= 1):
        raise UsageError(f"impressions_per_user must be at least 1, got {impressions_per_user!r}")
    p1 = baseline_rate
    p2 = baseline_rate * (1 + min_detectable_effect)
    if not 0 < p2 < 1 or min_detectable_effect == 0:
        raise UsageError(
            f"min_detectable_effect {min_detectable_effect!r} on a baseline rate of {baseline_rate:.4g} "
            "gives no valid variant rate"
        )
    kappa = (1 - variant_ratio) / variant_ratio  # control users per variant user
    m = impressions_per_user
    excess = max(0.0, design_effect - 1) * p1 * (1 - p1) / m  # per user, beyond the binomial
    growth = (1 + min_detectable_effect) ** 2
    var_control = p1 * (1 - p1) / m + excess
    var_variant = p2 * (1 - p2) / m + excess * growth
    # the unpooled (Wald) form: ratio_test estimates each arm's variance separately
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n_variant = math.ceil(z * z * (var_variant + var_control / kappa) / (p2 - p1) ** 2)
    return {"control": math.ceil(n_variant * kappa), "variant": n_variant}


def plan_from_baseline(
    baseline: Arm, min_detectable_effect: float, *, alpha: float, power: float, variant_ratio: float
) -> dict[str, int] | None:
    """:func:`sample_size_per_arm` from observed traffic (``None`` when it cannot plan anything)."""
    rate, deff = baseline.ctr, baseline.design_effect
    if not (0 < rate < 1 and rate * (1 + min_detectable_effect) < 1 and math.isfinite(deff) and deff > 0):
        return None
    return sample_size_per_arm(
        rate,
        min_detectable_effect,
        alpha=alpha,
        power=power,
        variant_ratio=variant_ratio,
        design_effect=deff,
        impressions_per_user=baseline.impressions_per_user,
    )


def ratio_test(control: Arm, variant: Arm, *, alpha: float) -> RatioTest:
    """Delta-method z-test of the two click-through rates and the CI of the relative lift."""
    _check_rate("alpha", alpha)
    for arm in (control, variant):
        if arm.users < 2 or arm.impressions == 0:
            raise UsageError(f"the {arm.name} arm needs at least 2 users with impressions ({arm.users})")
    p1, p2 = control.ctr, variant.ctr
    var1, var2 = control.ctr_variance, variant.ctr_variance
    diff = p2 - p1
    se = math.sqrt(var1 + var2)
    if se == 0:
        z, p_value = 0.0, 1.0
    else:
        z = diff / se
        p_value = float(2 * stats.norm.sf(abs(z)))
    lift = p2 / p1 - 1 if p1 > 0 else math.nan
    lift_ci = (math.nan, math.nan)
    if p1 > 0 and p2 > 0:
        # log(p2/p1) has variance var2/p2² + var1/p1² (delta method again)
        half = stats.norm.ppf(1 - alpha / 2) * math.sqrt(var1 / p1**2 + var2 / p2**2)
        log_ratio = math.log(p2 / p1)
        lift_ci = (math.exp(log_ratio - half) - 1, math.exp(log_ratio + half) - 1)
    pooled = (control.clicks + variant.clicks) / (control.impressions + variant.impressions)
    binomial = pooled * (1 - pooled) * (1 / control.impressions + 1 / variant.impressions)
    deff = (var1 + var2) / binomial if binomial > 0 else math.nan
    return RatioTest(
        p1, p2, diff, lift, lift_ci, float(z), p_value, alpha, UNIT, control.users, variant.users, deff
    )


def two_proportion_test(control: Arm, variant: Arm, *, alpha: float) -> ProportionTest:
    """Pooled two-proportion z-test counting every impression as independent (the reference)."""
    _check_rate("alpha", alpha)
    n1, n2 = control.impressions, variant.impressions
    if n1 <= 0 or n2 <= 0:
        raise UsageError(f"both arms need impressions (control {n1}, variant {n2})")
    p1, p2 = control.clicks / n1, variant.clicks / n2
    pooled = (control.clicks + variant.clicks) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = p2 - p1
    z = diff / se0 if se0 else 0.0
    p_value = float(2 * stats.norm.sf(abs(z))) if se0 else 1.0
    lift = p2 / p1 - 1 if p1 > 0 else math.nan
    lift_ci = (math.nan, math.nan)
    if control.clicks and variant.clicks:  # Katz et al. 1978
        se = math.sqrt(1 / control.clicks - 1 / n1 + 1 / variant.clicks - 1 / n2)
        half = stats.norm.ppf(1 - alpha / 2) * se
        lift_ci = (math.exp(math.log(p2 / p1) - half) - 1, math.exp(math.log(p2 / p1) + half) - 1)
    return ProportionTest(p1, p2, diff, lift, lift_ci, float(z), p_value, alpha)


def sample_ratio_test(control_users: int, variant_users: int, *, variant_ratio: float) -> SampleRatioTest:
    """Chi-square test of the realised split of users against the configured ratio."""
    _check_rate("variant_ratio", variant_ratio)
    total = control_users + variant_users
    if total == 0:
        return SampleRatioTest(variant_ratio, math.nan, 0.0, 1.0, False)
    expected = [total * (1 - variant_ratio), total * variant_ratio]
    chi2, p_value = stats.chisquare([control_users, variant_users], expected)
    return SampleRatioTest(
        variant_ratio, variant_users / total, float(chi2), float(p_value), bool(p_value < SRM_ALPHA)
    )


def always_valid_p(control: Arm, variant: Arm, *, tau: float) -> float:
    """Mixture-SPRT p-value of "the rates differ" (Johari et al. 2017, normal mixture N(0, tau²)).

    Valid at any number of looks: the probability that it ever falls below
    alpha under an A/A test is at most alpha. The variance of the difference
    is the per-user (delta-method) one, as in :func:`ratio_test`. ``tau`` is
    the standard deviation of the mixture over the absolute difference of
    rates; the effect one plans for is a good choice.
    """
    if min(control.users, variant.users) < 2 or tau <= 0:
        return 1.0
    var = control.ctr_variance + variant.ctr_variance
    if not math.isfinite(var) or var == 0:
        return 1.0
    diff = variant.ctr - control.ctr
    t2 = tau * tau
    log_lambda = 0.5 * math.log(var / (var + t2)) + diff * diff * t2 / (2 * var * (var + t2))
    return float(min(1.0, math.exp(-log_lambda)))


def decide(
    control: Arm,
    variant: Arm,
    *,
    alpha: float,
    variant_ratio: float,
    required_per_arm: dict[str, int] | None,
) -> Decision:
    """The decision of ``ab conclude``: promote the variant only on a significant win."""
    srm = sample_ratio_test(control.users, variant.users, variant_ratio=variant_ratio)
    if min(control.users, variant.users) < MIN_USERS_PER_ARM or not (
        control.impressions and variant.impressions
    ):
        return Decision(
            Verdict.KEEP_CONTROL,
            f"too few users to decide: control has {control.users} users ({control.impressions} "
            f"impressions), variant {variant.users} ({variant.impressions}); at least "
            f"{MIN_USERS_PER_ARM} per arm are needed",
            None,
            srm,
            required_per_arm,
            True,
        )
    test = ratio_test(control, variant, alpha=alpha)
    underpowered = bool(
        required_per_arm
        and (control.users < required_per_arm["control"] or variant.users < required_per_arm["variant"])
    )
    summary = (
        f"CTR variant {test.variant_rate:.4f} vs control {test.control_rate:.4f} "
        f"({variant.users} vs {control.users} users), "
        f"lift {_pct(test.lift)} (CI {_pct(test.lift_ci[0])} to {_pct(test.lift_ci[1])}), "
        f"p = {test.p_value:.3g}"
    )
    if srm.mismatch:
        verdict, reason = (
            Verdict.KEEP_CONTROL,
            f"sample ratio mismatch: variant got {srm.observed_ratio:.3f} of users, configured "
            f"{variant_ratio:.3f} (p = {srm.p_value:.2g}); assignment is broken, "
            "the result cannot be trusted",
        )
    elif test.significant and test.difference > 0:
        verdict, reason = Verdict.PROMOTE, f"the variant wins significantly at alpha {alpha}: {summary}"
    elif test.significant:
        verdict, reason = Verdict.KEEP_CONTROL, f"the control wins significantly: {summary}"
    else:
        verdict, reason = Verdict.KEEP_CONTROL, f"no significant difference at alpha {alpha}: {summary}"
        if underpowered and required_per_arm:
            reason += (
                "; the test had fewer users than planned "
                f"(control {control.users}/{required_per_arm['control']}, "
                f"variant {variant.users}/{required_per_arm['variant']}), "
                "so no effect of the planned size is ruled out"
            )
    return Decision(verdict, reason, test, srm, required_per_arm, underpowered)


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1%}"
