"""Per-column drift between a reference profile and current data, and the dataset verdict.

Tests by column type:

- numeric: Wasserstein distance divided by the reference's standard deviation
  (``wasserstein``), with the two-sample Kolmogorov–Smirnov p-value beside it;
- categorical: Jensen–Shannon distance (``jensen_shannon``), with the p-value
  of a 2×k contingency chi-square beside it (sparse categories pooled);
- every column: the population stability index (``psi``).

Decisions (``data.drift.method``):

- ``distance`` (default): a column drifts when its distance reaches the
  threshold (0.1) *and* its p-value is under ``alpha`` — on large samples the
  p-value is always tiny and the distance decides; on small ones the test keeps
  sampling noise (which inflates distances) from raising false alarms.
- ``pvalue``: a column drifts when its Benjamini–Hochberg adjusted p-value is
  under ``alpha`` (false discovery rate controlled across the columns).

Categories absent from the reference ("unseen") count as categories of their
own: the reference share of each is 0 in the distance, floored at 1e-4 in PSI,
and in the chi-square table they are columns with a zero reference count
(pooled with other sparse categories when their expected count is small).

The dataset drifts when the share of drifted columns among those tested
reaches ``dataset_share`` (0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from conveyor.config import DriftMethod, DriftSection
from conveyor.data._drift_stats import (
    FloatArray,
    benjamini_hochberg,
    chi_square,
    histogram_shares,
    js_distance,
    ks_2samp_sorted,
    numeric_psi,
    psi,
    wasserstein_sorted,
)
from conveyor.data._profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    category_counts,
    finite_moments,
    finite_sorted,
    is_categorical,
    is_numeric,
    subsample,
)

HISTOGRAM_BINS = 30
PLOT_CATEGORIES = 20
NULL_CATEGORY = "(null)"
MAX_LISTED_UNSEEN = 10


@dataclass(frozen=True)
class Distribution:
    """Reference and current shares over shared bins, for plots."""

    kind: str  # "numeric": labels are len(ref)+1 bin edges; "categorical": labels are categories
    labels: list[Any]
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class DriftReport:
    """Per-column results and the dataset verdict of :func:`detect_drift`."""

    columns: dict[str, dict[str, Any]]
    dataset_share_threshold: float
    method: str
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it was not tested
    distributions: dict[str, Distribution] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, col in self.columns.items() if col["drift"]]

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
            "columns": {name: dict(col) for name, col in self.columns.items()},
        }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _numeric_column(
    ref: NumericProfile,
    cur: FloatArray,
    moments: tuple[int, float, float, float, float],
    settings: DriftSection,
) -> tuple[dict[str, Any], Distribution]:
    scale = ref.std if ref.std > 0 else (abs(ref.mean) if ref.mean != 0 else 1.0)
    wasserstein = wasserstein_sorted(ref.sample, cur)
    distance = wasserstein / scale
    ks_d, ks_p = ks_2samp_sorted(ref.sample, cur)
    col: dict[str, Any] = {
        "type": "numeric",
        "test": "wasserstein",
        "statistic": distance,
        "p_value": ks_p,
        "threshold": settings.numeric_threshold,
        "drift": bool(distance >= settings.numeric_threshold and ks_p < settings.alpha),
        "wasserstein": wasserstein,
        "wasserstein_normed": distance,
        "ks_statistic": ks_d,
        "ks_p_value": ks_p,
        "psi": numeric_psi(ref.sample, cur),
        "reference_mean": ref.mean,
        "current_mean": moments[1],
        "reference_std": ref.std,
        "current_std": moments[2],
        "current_rows": moments[0],
        "reference_sample": len(ref.sample),
        "current_sample": len(cur),
    }
    lo = min(ref.sample[int(0.005 * (len(ref.sample) - 1))], cur[int(0.005 * (len(cur) - 1))])
    hi = max(ref.sample[int(0.995 * (len(ref.sample) - 1))], cur[int(0.995 * (len(cur) - 1))])
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    dist = Distribution(
        "numeric",
        [float(e) for e in edges],
        [float(v) for v in histogram_shares(ref.sample, edges)],
        [float(v) for v in histogram_shares(cur, edges)],
    )
    return col, dist


def _categorical_column(
    ref: CategoricalProfile,
    cur_values: list[str],
    cur_counts: np.ndarray,
    cur_nulls: int,
    settings: DriftSection,
) -> tuple[dict[str, Any], Distribution]:
    index = {v: i for i, v in enumerate(ref.categories)}
    unseen = [v for v in cur_values if v not in index]
    labels = list(ref.categories) + unseen
    position = {v: i for i, v in enumerate(labels)}
    r = np.zeros(len(labels) + 1, dtype=np.int64)
    c = np.zeros(len(labels) + 1, dtype=np.int64)
    r[: len(ref.counts)] = ref.counts
    for v, n in zip(cur_values, cur_counts, strict=True):
        c[position[v]] = n
    r[-1], c[-1] = ref.nulls, cur_nulls
    if ref.nulls == 0 and cur_nulls == 0:  # nulls are a category only when some exist
        r, c = r[:-1], c[:-1]
    else:
        labels.append(NULL_CATEGORY)
    ref_share, cur_share = r / r.sum(), c / c.sum()
    distance = js_distance(r, c)
    chi = chi_square(r, c)
    unseen_rows = int(sum(c[position[v]] for v in unseen))
    col: dict[str, Any] = {
        "type": "categorical",
        "test": "jensen_shannon",
        "statistic": distance,
        "p_value": chi.p_value,
        "threshold": settings.categorical_threshold,
        "drift": bool(distance >= settings.categorical_threshold and chi.p_value < settings.alpha),
        "jensen_shannon": distance,
        "chi2": chi.statistic,
        "chi2_dof": chi.dof,
        "chi2_p_value": chi.p_value,
        "chi2_pooled_categories": chi.merged,
        "psi": psi(ref_share, cur_share),
        "categories": len(labels),
        "unseen_categories": unseen[:MAX_LISTED_UNSEEN],
        "unseen_share": unseen_rows / max(int(c.sum()), 1),
        "current_rows": int(c.sum()),
    }
    top = np.argsort(-(ref_share + cur_share), kind="stable")[:PLOT_CATEGORIES]
    dist = Distribution(
        "categorical",
        [labels[i] for i in top],
        [float(ref_share[i]) for i in top],
        [float(cur_share[i]) for i in top],
    )
    return col, dist


def _apply_pvalue_method(columns: dict[str, dict[str, Any]], settings: DriftSection) -> None:
    names = list(columns)
    adjusted = benjamini_hochberg([columns[n]["p_value"] for n in names])
    for name, p_adj in zip(names, adjusted, strict=True):
        col = columns[name]
        col["test"] = "ks" if col["type"] == "numeric" else "chi2"
        col["statistic"] = col["ks_statistic"] if col["type"] == "numeric" else col["chi2"]
        col["threshold"] = settings.alpha
        col["p_value_adjusted"] = p_adj
        col["drift"] = bool(p_adj < settings.alpha)


def detect_drift(reference: ReferenceProfile, current: pl.DataFrame, settings: DriftSection) -> DriftReport:
    """Compare ``current`` with the ``reference`` profile, column by column."""
    wanted = settings.columns if settings.columns is not None else [*reference.columns, *reference.skipped]
    skipped: dict[str, str] = {}
    numeric: dict[str, NumericProfile] = {}
    categorical: dict[str, CategoricalProfile] = {}
    for name in wanted:
        if name in settings.ignore:
            continue
        profile = reference.columns.get(name)
        if profile is None:
            skipped[name] = reference.skipped.get(name, "not in the reference profile")
        elif name not in current.columns:
            skipped[name] = "missing from the current data"
        elif isinstance(profile, NumericProfile) and is_numeric(current.schema[name]):
            numeric[name] = profile
        elif isinstance(profile, CategoricalProfile) and is_categorical(current.schema[name]):
            categorical[name] = profile
        else:
            skipped[name] = f"type changed: {profile.kind} in the reference, {current.schema[name]} now"
    results: dict[str, dict[str, Any]] = {}
    distributions: dict[str, Distribution] = {}
    moments = finite_moments(current, list(numeric))
    for name, values in finite_sorted(subsample(current, list(numeric)), list(numeric)).items():
        if len(values) == 0:
            skipped[name] = "no finite values in the current data"
            continue
        results[name], distributions[name] = _numeric_column(numeric[name], values, moments[name], settings)
    for name, (values_c, counts, nulls) in category_counts(current, list(categorical)).items():
        if len(values_c) == 0 and nulls == 0:
            skipped[name] = "no values in the current data"
            continue
        results[name], distributions[name] = _categorical_column(
            categorical[name], values_c, counts, nulls, settings
        )
    for col in results.values():
        for key, value in col.items():
            if isinstance(value, float):
                col[key] = _finite(value)
    if settings.method is DriftMethod.PVALUE:
        _apply_pvalue_method(results, settings)
    ordered = {name: results[name] for name in wanted if name in results}
    return DriftReport(
        columns=ordered,
        dataset_share_threshold=settings.dataset_share,
        method=settings.method.value,
        skipped=skipped,
        distributions=distributions,
    )


__all__ = ["Distribution", "DriftReport", "detect_drift"]
