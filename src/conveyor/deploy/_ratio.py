"""A rate that is a ratio of per-user sums, with the user as the independent unit.

Click-through rate (clicked answers ÷ answers) and error rate (errors ÷
requests) are both Σ x_u ÷ Σ n_u over users u: the requests of one user are
correlated (a user whose requests fail tends to fail again; a user who clicks
clicks often), so the rate's variance is not the binomial one over requests.
The delta method for a ratio of two per-user means gives it with the user as
the independent unit (Deng, Knoblich & Lu, "Applying the Delta Method in
Metric Analytics", KDD 2018):

    Var(X̄/N̄) ≈ (Var x − 2R Cov(x, n) + R² Var n) / (K N̄²)

over the K users, R = Σx / Σn. The A/B test (``conveyor.deploy._abtest``,
click-through rate) and the canary analysis (``conveyor.deploy._canary``, error
rate) both use this one implementation. Hand-written: a dozen lines on numpy;
statsmodels has no ratio-metric delta method and would be a large dependency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from conveyor.errors import UsageError


def unit_variance(
    units: int, denominator: float, numerator: float, denominator_sq: float, numerator_sq: float, cross: float
) -> float:
    """Variance of one unit's linearised rate ``(x_u − R · n_u) / N̄`` from the sufficient statistics.

    ``denominator`` = Σ n_u, ``numerator`` = Σ x_u, ``denominator_sq`` = Σ n_u², ``numerator_sq`` =
    Σ x_u², ``cross`` = Σ n_u · x_u over ``units`` units (NaN with fewer than 2 units or no n).
    """
    k = units
    if k < 2 or denominator == 0:
        return math.nan
    mean_n, mean_x, rate = denominator / k, numerator / k, numerator / denominator
    var_n = (denominator_sq - k * mean_n * mean_n) / (k - 1)
    var_x = (numerator_sq - k * mean_x * mean_x) / (k - 1)
    cov = (cross - k * mean_n * mean_x) / (k - 1)
    return max(0.0, var_x - 2 * rate * cov + rate * rate * var_n) / (mean_n * mean_n)


@dataclass(frozen=True)
class UnitRatio:
    """Σ x_u ÷ Σ n_u over independent units, with its delta-method variance."""

    units: int
    denominator: float  # Σ n_u
    numerator: float  # Σ x_u
    denominator_sq: float  # Σ n_u²
    numerator_sq: float  # Σ x_u²
    cross: float  # Σ n_u · x_u

    @classmethod
    def from_units(
        cls, denominators: Sequence[float] | np.ndarray, numerators: Sequence[float] | np.ndarray
    ) -> UnitRatio:
        """The ratio of units with ``numerators[u]`` events out of ``denominators[u]`` (0 ≤ x ≤ n)."""
        n = np.asarray(denominators, dtype=np.float64)
        x = np.asarray(numerators, dtype=np.float64)
        if n.shape != x.shape or n.ndim != 1:
            raise UsageError("a per-unit ratio needs one numerator and one denominator per unit")
        if np.any(n < 0) or np.any(x < 0) or np.any(x > n):
            raise UsageError("a per-unit ratio needs 0 <= numerator <= denominator for each unit")
        return cls(int(n.size), float(n.sum()), float(x.sum()), float(n @ n), float(x @ x), float(n @ x))

    @property
    def rate(self) -> float:
        return self.numerator / self.denominator if self.denominator else math.nan

    @property
    def variance(self) -> float:
        """Delta-method variance of :attr:`rate`, units as the independent draws."""
        per_unit = unit_variance(
            self.units, self.denominator, self.numerator, self.denominator_sq, self.numerator_sq, self.cross
        )
        return per_unit / self.units if self.units >= 2 else math.nan

    @property
    def design_effect(self) -> float:
        """:attr:`variance` over the binomial variance that counts every n as independent (Kish)."""
        rate = self.rate
        if not 0 < rate < 1:
            return math.nan
        return self.variance / (rate * (1 - rate) / self.denominator)


def pooled_difference_variance(first: UnitRatio, second: UnitRatio) -> float:
    """Variance of ``second.rate − first.rate`` when both arms have the same rate (the null).

    Each unit's residual ``x_u − R₀ · n_u`` around the pooled rate R₀ has one variance,
    estimated from both arms' units together: the variance of a rate is then not
    estimated from the rate's own sample, which under heavy-tailed, skewed units moves
    with the estimate (an arm that happens to lack its heavy clickers has both a low rate
    and a small variance) and makes a one-sided test in the lower direction reject too
    often. A score test, as the pooled two-proportion z-test is for independent units.
    """
    units = first.units + second.units
    if first.units < 2 or second.units < 2 or first.denominator == 0 or second.denominator == 0:
        return math.nan
    rate = (first.numerator + second.numerator) / (first.denominator + second.denominator)
    squares = 0.0
    for arm in (first, second):
        total = arm.numerator - rate * arm.denominator  # Σ residual
        sum_sq = arm.numerator_sq - 2 * rate * arm.cross + rate * rate * arm.denominator_sq
        squares += max(0.0, sum_sq - total * total / arm.units)
    per_unit = squares / (units - 2)
    return sum(per_unit / (arm.units * (arm.denominator / arm.units) ** 2) for arm in (first, second))
