"""What a drift check returns: :class:`DriftReport` with one :class:`ColumnDrift` per tested column.

The engines (:func:`~conveyor.data.detect_drift`, :func:`~conveyor.data.stream_drift`) build a
column's numbers as they go and freeze them here; every reader outside ``conveyor.data``
(the monitor, the CLI's human table, the HTML report) reads attributes. ``to_dict`` is the
edge: the ``--json`` object, the monitor's report and the stage results store, with the keys
in the order the command line has always printed them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# The JSON keys of a column, in their printed order, by the column's test family.
_HEAD = ("type", "test", "statistic", "p_value", "threshold", "drift")
_NULL_RATE = (
    "mode",
    "null_rate_reference",
    "null_rate_current",
    "null_rate_effect",
    "null_rate_p_value",
    "null_rate_threshold",
    "null_rate_drift",
)
_ADJUSTED = ("p_value_adjusted", "null_rate_p_value_adjusted")
_NUMERIC_KEYS = (
    *_HEAD,
    "wasserstein", "wasserstein_normed", "ks_statistic", "ks_p_value", "psi", "distribution_drift",
    "reference_mean", "current_mean", "reference_std", "current_std", "current_rows",
    "reference_sample", "current_sample",
    *_NULL_RATE,
)  # fmt: skip
_CATEGORICAL_KEYS = (
    *_HEAD,
    "distribution_drift", "jensen_shannon", "chi2", "chi2_dof", "chi2_p_value", "chi2_pooled_categories",
    "psi", "categories", "unseen_categories", "unseen_share", "current_rows",
    *_NULL_RATE,
)  # fmt: skip


@dataclass(frozen=True)
class Distribution:
    """Reference and current shares over shared bins, for plots."""

    kind: str  # "numeric": labels are len(ref)+1 bin edges; "categorical": labels are categories
    labels: list[Any]
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class ColumnDrift:
    """One column's tests and decisions. A number that is not finite is ``None``.

    ``statistic``, ``p_value`` and ``threshold`` are those of the test that decides
    (``wasserstein``/``jensen_shannon`` under the distance method, ``ks``/``chi2`` under the
    p-value method); the numeric-only and categorical-only numbers are ``None`` on the other kind.
    """

    type: str  # "numeric", "datetime", "date" or "categorical"
    test: str  # "wasserstein", "jensen_shannon", "ks" or "chi2"
    statistic: float | None
    p_value: float | None
    threshold: float
    drift: bool  # the distribution or the null rate drifted
    distribution_drift: bool
    psi: float | None
    current_rows: int
    mode: str  # "exact", "sampled" or "sketch"
    null_rate_reference: float | None
    null_rate_current: float | None
    null_rate_effect: float | None
    null_rate_p_value: float | None
    null_rate_threshold: float
    null_rate_drift: bool
    # numeric (and datetime/date) columns
    wasserstein: float | None = None
    wasserstein_normed: float | None = None
    ks_statistic: float | None = None
    ks_p_value: float | None = None
    reference_mean: float | None = None
    current_mean: float | None = None
    reference_std: float | None = None
    current_std: float | None = None
    reference_sample: int | None = None
    current_sample: int | None = None
    # categorical columns
    jensen_shannon: float | None = None
    chi2: float | None = None
    chi2_dof: int | None = None
    chi2_p_value: float | None = None
    chi2_pooled_categories: int | None = None
    categories: int | None = None
    unseen_categories: list[str] = field(default_factory=list)
    unseen_share: float | None = None
    # the p-value method (Benjamini–Hochberg across the columns); None under the distance method
    p_value_adjusted: float | None = None
    null_rate_p_value_adjusted: float | None = None
    # the numbers a drift test from a plugin (the ``conveyor.drift_tests`` registry) adds under its
    # own names, e.g. ``mean_shift``; printed after the built-in keys
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, col: dict[str, Any]) -> ColumnDrift:
        """A column's result from the engines' dict: known keys to fields, a plugin's to ``extra``."""
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            **{k: v for k, v in col.items() if k in known},
            extra={k: v for k, v in col.items() if k not in known},
        )

    @property
    def categorical(self) -> bool:
        return self.type == "categorical"

    def to_dict(self) -> dict[str, Any]:
        keys = _CATEGORICAL_KEYS if self.categorical else _NUMERIC_KEYS
        if self.p_value_adjusted is not None:
            keys = (*keys, *_ADJUSTED)
        out = {key: getattr(self, key) for key in keys}
        if self.categorical:
            out["unseen_categories"] = list(self.unseen_categories)
        return {**out, **self.extra}


@dataclass(frozen=True)
class DriftReport:
    """Per-column results and the dataset verdict of :func:`detect_drift`."""

    columns: dict[str, ColumnDrift]
    dataset_share_threshold: float
    method: str
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it was not tested
    distributions: dict[str, Distribution] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # column -> why its data cannot be compared
    only_in_reference: list[str] = field(default_factory=list)
    only_in_current: list[str] = field(default_factory=list)
    mode: str = "exact"  # "exact": every row of both sides; "sampled": see rows_used
    table_rows: dict[str, int] = field(default_factory=dict)  # rows of each side: reference, current
    rows_used: dict[str, int] = field(default_factory=dict)  # rows behind the numeric tests, per side

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, col in self.columns.items() if col.drift]

    @property
    def drift_share(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.columns) and self.drift_share >= self.dataset_share_threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
            "mode": self.mode,
            "table_rows": dict(self.table_rows),
            "rows_used": dict(self.rows_used),
            "only_in_reference": list(self.only_in_reference),
            "only_in_current": list(self.only_in_current),
            **({"problems": dict(self.problems)} if self.problems else {}),
        }


__all__ = ["ColumnDrift", "Distribution", "DriftReport"]
