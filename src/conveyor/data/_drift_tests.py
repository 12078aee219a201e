"""Drift tests as a registry: the per-column comparisons ``detect_drift`` runs.

A drift test is an object registered in the entry-point group ``conveyor.drift_tests``
(:data:`conveyor.extensions.DRIFT_TESTS`); Conveyor's own two are declared in its pyproject.toml
exactly as a plugin package declares its own (docs/extending.md). ``data.drift.tests`` chooses
the test of each column kind and ``data.drift.column_tests`` the test of one column; the
configuration and its JSON Schema list the registered names.

A test compares one column and returns a :class:`DriftTestResult`: its ``distance`` (an effect
size, compared with ``data.drift.numeric_threshold`` or ``categorical_threshold``) and the
``p_value`` of the significance test beside it. With ``data.drift.method: distance`` a column
drifts when the distance reaches the threshold *and* the p-value is under ``alpha``; with
``pvalue`` when its Benjamini–Hochberg adjusted p-value is under ``alpha`` (the report then
names ``significance_test`` and its ``statistic``). ``details`` are reported with the column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from conveyor.config import DriftSection
from conveyor.data._drift_stats import (
    FloatArray,
    IntArray,
    chi_square,
    js_distance,
    ks_2samp_sorted,
    wasserstein_sorted,
)
from conveyor.errors import UsageError
from conveyor.extensions import DRIFT_TESTS

ColumnKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class NumericColumn:
    """A numeric (or datetime, as epoch seconds) column: both sides' finite values, sorted."""

    reference: FloatArray
    current: FloatArray
    reference_mean: float  # of every reference value (the sample may be a sketch of them)
    reference_std: float


@dataclass(frozen=True)
class CategoricalColumn:
    """A categorical column: counts of each label on both sides (nulls a label of their own when any)."""

    labels: list[Any]
    reference: IntArray
    current: IntArray


@dataclass(frozen=True)
class DriftTestResult:
    distance: float  # compared with the column kind's threshold
    p_value: float  # of the significance test
    significance_test: str  # its name ("ks", "chi2"), the test reported under data.drift.method: pvalue
    statistic: float  # its statistic
    details: Mapping[str, Any]  # reported with the column, e.g. {"ks_statistic": …}


@runtime_checkable
class DriftTest(Protocol):
    """One registered drift test: the column kinds it applies to and its comparison."""

    @property
    def kinds(self) -> frozenset[str]: ...

    def compute(self, column: NumericColumn | CategoricalColumn) -> DriftTestResult: ...


@dataclass(frozen=True)
class Wasserstein:
    """Wasserstein distance divided by the reference's standard deviation; KS p-value beside it."""

    kinds: frozenset[str] = frozenset({"numeric"})

    def compute(self, column: NumericColumn | CategoricalColumn) -> DriftTestResult:
        if not isinstance(column, NumericColumn):
            raise TypeError("wasserstein compares numeric columns")
        ref_std, ref_mean = column.reference_std, column.reference_mean
        scale = ref_std if ref_std > 0 else (abs(ref_mean) if ref_mean != 0 else 1.0)
        wasserstein = wasserstein_sorted(column.reference, column.current)
        distance = wasserstein / scale
        ks_d, ks_p = ks_2samp_sorted(column.reference, column.current)
        details = {
            "wasserstein": wasserstein,
            "wasserstein_normed": distance,
            "ks_statistic": ks_d,
            "ks_p_value": ks_p,
        }
        return DriftTestResult(distance, ks_p, "ks", ks_d, details)


@dataclass(frozen=True)
class JensenShannon:
    """Jensen–Shannon distance; the 2×k contingency chi-square p-value beside it."""

    kinds: frozenset[str] = frozenset({"categorical"})

    def compute(self, column: NumericColumn | CategoricalColumn) -> DriftTestResult:
        if not isinstance(column, CategoricalColumn):
            raise TypeError("jensen_shannon compares categorical columns")
        distance = js_distance(column.reference, column.current)
        chi = chi_square(column.reference, column.current)
        details = {
            "jensen_shannon": distance,
            "chi2": chi.statistic,
            "chi2_dof": chi.dof,
            "chi2_p_value": chi.p_value,
            "chi2_pooled_categories": chi.merged,
        }
        return DriftTestResult(distance, chi.p_value, "chi2", chi.statistic, details)


WASSERSTEIN = Wasserstein()
JENSEN_SHANNON = JensenShannon()


def drift_test(name: str) -> DriftTest:
    """The drift test registered as ``name``; ExtensionError in one line if none is, or it is broken."""
    test: DriftTest = DRIFT_TESTS.load_as(name, DriftTest, "needs kinds and compute()")
    return test


class ChosenTests:
    """The test of each column under ``settings`` (``column_tests``, else ``tests`` by kind), loaded once."""

    def __init__(self, settings: DriftSection) -> None:
        self.settings = settings
        self._loaded: dict[str, DriftTest] = {}

    def __call__(self, column: str, kind: ColumnKind) -> tuple[str, DriftTest]:
        chosen = self.settings.column_tests.get(column)
        name = chosen or getattr(self.settings.tests, kind)
        if name not in self._loaded:
            self._loaded[name] = drift_test(name)
        test = self._loaded[name]
        if kind not in test.kinds:
            key = f"data.drift.column_tests.{column}" if chosen else f"data.drift.tests.{kind}"
            raise UsageError(
                f"{key}: drift test {name!r} compares {', '.join(sorted(test.kinds))} columns; "
                f"{column!r} is {kind}"
            )
        return name, test


__all__ = [
    "JENSEN_SHANNON",
    "WASSERSTEIN",
    "CategoricalColumn",
    "ChosenTests",
    "ColumnKind",
    "DriftTest",
    "DriftTestResult",
    "NumericColumn",
    "drift_test",
]
