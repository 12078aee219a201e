"""The statistics of an A/B test on click-through rate.

A fixed-horizon design, decided once by ``conveyor ab conclude``:

* :func:`sample_size_per_arm` — before the test starts, the impressions each
  arm needs to find the configured relative lift (``deploy.ab.min_detectable_effect``)
  at ``alpha`` (two-sided) with ``power``, for an unequal split (the variant
  usually gets 10 %).
* :func:`two_proportion_test` — the pooled two-proportion z-test of the
  click-through rates, two-sided p-value, and the confidence interval of the
  relative lift (delta method on the log of the ratio of the two rates).
* :func:`sample_ratio_test` — the sample-ratio-mismatch check: a chi-square
  goodness-of-fit test of the users per arm against the configured ratio; a
  mismatch means assignment is broken and no decision can be trusted.
* :func:`always_valid_p` — for interim looks (``ab status``): the mixture
  sequential probability ratio test p-value, honest at every look however
  often one looks; the fixed-horizon p-value is only reported at ``conclude``.
* :func:`decide` — the one decision: promote only on a significant win.

The formulas are hand-written on top of ``scipy.stats.norm`` and
``scipy.stats.chisquare``: they are a dozen lines, and statsmodels (which has
them) would be a large dependency for them alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from scipy import stats

from conveyor.errors import UsageError

SRM_ALPHA = 0.001  # the usual threshold of a sample-ratio-mismatch alarm


@dataclass(frozen=True)
class Arm:
    """Observed counts of one arm: users, impressions (recommendations shown) and clicks."""

    name: str
    users: int
    impressions: int
    clicks: int

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else math.nan


@dataclass(frozen=True)
class ProportionTest:
    """Result of the two-proportion test of variant against control."""

    control_rate: float
    variant_rate: float
    difference: float
    lift: float  # relative: variant_rate / control_rate - 1
    lift_ci: tuple[float, float]  # confidence interval of ``lift`` at 1 - alpha
    z: float
    p_value: float  # two-sided
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
    test: ProportionTest | None
    srm: SampleRatioTest
    required_per_arm: dict[str, int] | None
    underpowered: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
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
) -> dict[str, int]:
    """Impressions each arm needs to detect a relative lift ``min_detectable_effect``.

    Two-sided test at ``alpha``; the variant receives ``variant_ratio`` of the
    traffic and the control the rest (Chow, Shao & Wang, *Sample Size
    Calculations in Clinical Research*, §4.2, with unequal allocation).
    """
    _check_rate("baseline_rate", baseline_rate)
    _check_rate("alpha", alpha)
    _check_rate("power", power)
    _check_rate("variant_ratio", variant_ratio)
    p1 = baseline_rate
    p2 = baseline_rate * (1 + min_detectable_effect)
    if not 0 < p2 < 1 or min_detectable_effect == 0:
        raise UsageError(
            f"min_detectable_effect {min_detectable_effect!r} on a baseline rate of {baseline_rate:.4g} "
            "gives no valid variant rate"
        )
    kappa = (1 - variant_ratio) / variant_ratio  # control impressions per variant impression
    pooled = (kappa * p1 + p2) / (1 + kappa)
    z_a = stats.norm.ppf(1 - alpha / 2)
    z_b = stats.norm.ppf(power)
    root = z_a * math.sqrt(pooled * (1 - pooled) * (1 + 1 / kappa)) + z_b * math.sqrt(
        p2 * (1 - p2) + p1 * (1 - p1) / kappa
    )
    n_variant = math.ceil(root**2 / (p2 - p1) ** 2)
    return {"control": math.ceil(n_variant * kappa), "variant": n_variant}


def two_proportion_test(control: Arm, variant: Arm, *, alpha: float) -> ProportionTest:
    """Pooled two-proportion z-test and the CI of the relative lift."""
    _check_rate("alpha", alpha)
    n1, n2 = control.impressions, variant.impressions
    if n1 <= 0 or n2 <= 0:
        raise UsageError(f"both arms need impressions (control {n1}, variant {n2})")
    p1, p2 = control.clicks / n1, variant.clicks / n2
    pooled = (control.clicks + variant.clicks) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = p2 - p1
    if se0 == 0:
        z, p_value = 0.0, 1.0
    else:
        z = diff / se0
        p_value = float(2 * stats.norm.sf(abs(z)))
    lift = p2 / p1 - 1 if p1 > 0 else math.nan
    lift_ci = _lift_interval(control.clicks, n1, variant.clicks, n2, alpha)
    return ProportionTest(p1, p2, diff, lift, lift_ci, float(z), p_value, alpha)


def _lift_interval(c1: int, n1: int, c2: int, n2: int, alpha: float) -> tuple[float, float]:
    """CI of p2/p1 - 1 by the delta method on log(p2/p1) (Katz et al. 1978)."""
    if c1 == 0 or c2 == 0:
        return (math.nan, math.nan)
    log_ratio = math.log((c2 / n2) / (c1 / n1))
    se = math.sqrt(1 / c1 - 1 / n1 + 1 / c2 - 1 / n2)
    z = stats.norm.ppf(1 - alpha / 2)
    return (math.exp(log_ratio - z * se) - 1, math.exp(log_ratio + z * se) - 1)


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
    alpha under an A/A test is at most alpha. ``tau`` is the standard deviation
    of the mixture over the absolute difference of rates; the effect one
    plans for is a good choice.
    """
    n1, n2 = control.impressions, variant.impressions
    if n1 <= 0 or n2 <= 0 or tau <= 0:
        return 1.0
    pooled = (control.clicks + variant.clicks) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var == 0:
        return 1.0
    diff = variant.clicks / n2 - control.clicks / n1
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
    if control.impressions == 0 or variant.impressions == 0:
        return Decision(
            Verdict.KEEP_CONTROL,
            f"no data: control has {control.impressions} impressions, variant {variant.impressions}",
            None,
            srm,
            required_per_arm,
            True,
        )
    test = two_proportion_test(control, variant, alpha=alpha)
    underpowered = bool(
        required_per_arm
        and (
            control.impressions < required_per_arm["control"]
            or variant.impressions < required_per_arm["variant"]
        )
    )
    summary = (
        f"CTR variant {test.variant_rate:.4f} vs control {test.control_rate:.4f}, "
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
        if underpowered:
            reason += (
                "; the test had fewer impressions than planned "
                f"({control.impressions}/{variant.impressions} vs {required_per_arm}), "
                "so no effect of the planned size is ruled out"
            )
    return Decision(verdict, reason, test, srm, required_per_arm, underpowered)


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1%}"
