"""A drift test: the shift of the mean in reference standard deviations, with Welch's t-test beside it."""

from __future__ import annotations

from scipy import stats

from conveyor.data import DriftTestResult, NumericColumn


class MeanShift:
    """Flags a moved mean and nothing else (a wider spread with the same mean is no drift here)."""

    kinds = frozenset({"numeric"})

    def compute(self, column: object) -> DriftTestResult:
        if not isinstance(column, NumericColumn):
            raise TypeError("mean_shift compares numeric columns")
        shift = abs(float(column.current.mean()) - column.reference_mean) / column.reference_std
        welch = stats.ttest_ind(column.reference, column.current, equal_var=False)
        return DriftTestResult(
            shift, float(welch.pvalue), "welch_t", float(welch.statistic), {"mean_shift": shift}
        )


MEAN_SHIFT = MeanShift()
