"""Per-column drift between a reference profile and current data, and the dataset verdict.

Tests by column type:

- numeric: Wasserstein distance divided by the reference's standard deviation
  (``wasserstein``), with the two-sample Kolmogorov–Smirnov p-value beside it;
- categorical: Jensen–Shannon distance (``jensen_shannon``), with the p-value
  of a 2×k contingency chi-square beside it (sparse categories pooled);
- every column: the population stability index (``psi``), and the null rate
  (nulls, NaN) compared by a two-proportion test with Cohen's h as its effect
  size (``null_rate_*``; threshold ``null_rate_threshold``, 0.1);
- datetime and date columns: as numeric columns of epoch seconds — except the
  table's time axis (every current timestamp at or after the last reference
  one), which moves by construction and is reported as not tested.

Which columns (see :mod:`conveyor.data._profile`): integer codes with few
values are categorical; identifier-like columns are not tested, with the
reason. Columns present on one side only are listed (``only_in_reference``,
``only_in_current``). Data that cannot be compared honestly — infinite values,
a column with no value at all in the current data while the reference has
some, a type change (a number column that now holds text) — is listed in
``problems`` (the command line exits 2 on them).

Exact and sampled (``mode``): numeric tests use every finite value of both
sides when the reference profile holds them all (``build_profile(...,
sample_size=None)``) and the current table has at most ``exact_max_rows``
rows; otherwise the reference's stored sketch and/or a seeded random sample of
the current rows, and the report says so with the rows used per side.
Categorical counts and null rates always use every row.

Decisions (``data.drift.method``):

- ``distance`` (default): a column drifts when its distance (or its null
  rate's h) reaches the threshold (0.1) *and* its p-value is under ``alpha`` — on large samples the
  p-value is always tiny and the distance decides; on small ones the test keeps
  sampling noise (which inflates distances) from raising false alarms.
- ``pvalue``: a column drifts when its Benjamini–Hochberg adjusted p-value is
  under ``alpha`` (false discovery rate controlled across the columns; the
  null-rate p-values are a second family, adjusted the same way).

Categories absent from the reference ("unseen") count as categories of their
own: the reference share of each is 0 in the distance, floored at 1e-4 in PSI,
and in the chi-square table they are columns with a zero reference count
(pooled with other sparse categories when their expected count is small).

The dataset drifts when the share of drifted columns among those tested
reaches ``dataset_share`` (0.5).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from conveyor.config import DriftMethod, DriftSection
from conveyor.data._drift_result import ColumnDrift, Distribution, DriftReport
from conveyor.data._drift_stats import (
    FloatArray,
    benjamini_hochberg,
    histogram_shares,
    null_rate_test,
    numeric_psi,
    psi,
)
from conveyor.data._drift_tests import (
    CategoricalColumn,
    ChosenTests,
    DriftTest,
    DriftTestResult,
    NumericColumn,
)
from conveyor.data._profile import (
    EXACT_MAX_ROWS,
    SORT_SUBSAMPLE,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    category_counts,
    finite_moments,
    finite_sorted,
    infinite_counts,
    is_categorical,
    is_numeric,
    subsample,
    temporal_kind,
)

HISTOGRAM_BINS = 30
PLOT_CATEGORIES = 20
NULL_CATEGORY = "(null)"
MAX_LISTED_UNSEEN = 10


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _numeric_column(
    ref: NumericProfile,
    cur: FloatArray,
    moments: tuple[int, float, float, float, float],
    settings: DriftSection,
    chosen: tuple[str, DriftTest],
) -> tuple[dict[str, Any], Distribution, DriftTestResult]:
    name, test = chosen
    result = test.compute(NumericColumn(ref.sample, cur, ref.mean, ref.std))
    drifted = bool(result.distance >= settings.numeric_threshold and result.p_value < settings.alpha)
    col: dict[str, Any] = {
        "type": ref.temporal or "numeric",
        "test": name,
        "statistic": result.distance,
        "p_value": result.p_value,
        "threshold": settings.numeric_threshold,
        "drift": drifted,
        **result.details,
        "psi": numeric_psi(ref.sample, cur),
        "distribution_drift": drifted,
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
    return col, dist, result


def _categorical_column(
    ref: CategoricalProfile,
    cur_values: list[str],
    cur_counts: np.ndarray,
    cur_nulls: int,
    settings: DriftSection,
    chosen: tuple[str, DriftTest],
) -> tuple[dict[str, Any], Distribution, DriftTestResult]:
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
    name, test = chosen
    result = test.compute(CategoricalColumn(labels, r, c))
    drifted = bool(result.distance >= settings.categorical_threshold and result.p_value < settings.alpha)
    unseen_rows = int(sum(c[position[v]] for v in unseen))
    col: dict[str, Any] = {
        "type": "categorical",
        "test": name,
        "statistic": result.distance,
        "p_value": result.p_value,
        "threshold": settings.categorical_threshold,
        "drift": drifted,
        "distribution_drift": drifted,
        **result.details,
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
    return col, dist, result


def _add_null_rate(
    col: dict[str, Any], ref_nulls: int, ref_rows: int, cur_nulls: int, cur_rows: int, settings: DriftSection
) -> None:
    test = null_rate_test(ref_nulls, ref_rows, cur_nulls, cur_rows)
    drifted = abs(test.effect) >= settings.null_rate_threshold and test.p_value < settings.alpha
    col.update(
        null_rate_reference=test.reference_rate, null_rate_current=test.current_rate,
        null_rate_effect=test.effect, null_rate_p_value=test.p_value,
        null_rate_threshold=settings.null_rate_threshold, null_rate_drift=bool(drifted),
    )  # fmt: skip
    col["drift"] = bool(col["distribution_drift"] or drifted)


def _apply_pvalue_method(
    columns: dict[str, dict[str, Any]], outcomes: dict[str, DriftTestResult], settings: DriftSection
) -> None:
    names = list(columns)
    adjusted = benjamini_hochberg([columns[n]["p_value"] for n in names])
    null_adjusted = benjamini_hochberg([columns[n]["null_rate_p_value"] for n in names])
    for name, p_adj, null_adj in zip(names, adjusted, null_adjusted, strict=True):
        col = columns[name]
        col["test"] = outcomes[name].significance_test
        col["statistic"] = _finite(outcomes[name].statistic)
        col["threshold"] = settings.alpha
        col["p_value_adjusted"] = p_adj
        col["null_rate_p_value_adjusted"] = null_adj
        col["distribution_drift"] = bool(p_adj < settings.alpha)
        col["null_rate_drift"] = bool(null_adj < settings.alpha)
        col["drift"] = col["distribution_drift"] or col["null_rate_drift"]


def _type_problem(
    profile: NumericProfile | CategoricalProfile, current: pl.DataFrame, name: str
) -> str | None:
    """Why the current column cannot be compared with its reference profile, or None."""
    dtype = current.schema[name]
    if isinstance(profile, CategoricalProfile):
        if is_categorical(dtype) or dtype.is_integer():
            return None
        return f"type changed: categorical in the reference, {dtype} in the current data"
    kind = temporal_kind(dtype)
    if kind == profile.temporal and (kind is not None or is_numeric(dtype)):
        return None
    was = profile.temporal or "numeric"
    example = ""
    if dtype == pl.String:
        values = current.get_column(name)
        bad = values.filter(values.is_not_null() & values.cast(pl.Float64, strict=False).is_null())
        example = f" (e.g. {bad[0]!r})" if len(bad) else ""
    return f"type changed: {was} in the reference, {dtype} in the current data{example}"


def _time_axis(profile: NumericProfile, cur_min: float) -> str | None:
    """The table's time axis: every current timestamp at or after the reference's last one."""
    if profile.temporal is None or cur_min < profile.max or profile.max <= profile.min:
        return None
    first = datetime.fromtimestamp(profile.min, UTC).isoformat(timespec="seconds")
    last = datetime.fromtimestamp(profile.max, UTC).isoformat(timespec="seconds")
    start = datetime.fromtimestamp(cur_min, UTC).isoformat(timespec="seconds")
    return (
        f"time axis: the current data starts ({start}) after the reference period ({first} – {last}); "
        "a moving time column drifts by construction"
    )


def _classify(
    reference: ReferenceProfile, current: pl.DataFrame, settings: DriftSection
) -> tuple[
    dict[str, NumericProfile], dict[str, CategoricalProfile], dict[str, str], dict[str, str], list[str]
]:
    """Split the wanted columns into numeric and categorical tests, skipped ones and problems."""
    wanted = settings.columns if settings.columns is not None else [*reference.columns, *reference.skipped]
    skipped: dict[str, str] = {}
    problems: dict[str, str] = {}
    numeric: dict[str, NumericProfile] = {}
    categorical: dict[str, CategoricalProfile] = {}
    for name in wanted:
        if name in settings.ignore:
            continue
        profile = reference.columns.get(name)
        if profile is None:
            skipped[name] = reference.skipped.get(name, "not in the reference")
        elif name not in current.columns:
            skipped[name] = "missing from the current data"
        elif (problem := _type_problem(profile, current, name)) is not None:
            problems[name] = problem
        elif isinstance(profile, NumericProfile):
            numeric[name] = profile
        else:
            categorical[name] = profile
    return numeric, categorical, skipped, problems, wanted


def _decide(
    results: dict[str, dict[str, Any]],
    outcomes: dict[str, DriftTestResult],
    settings: DriftSection,
    wanted: list[str],
) -> dict[str, dict[str, Any]]:
    """Non-finite numbers as None, the p-value method's decisions if chosen; columns in ``wanted`` order."""
    for col in results.values():
        for key, value in col.items():
            if isinstance(value, float):
                col[key] = _finite(value)
    if settings.method is DriftMethod.PVALUE:
        _apply_pvalue_method(results, outcomes, settings)
    return {name: results[name] for name in wanted if name in results}


def _report(
    reference: ReferenceProfile, settings: DriftSection, wanted: list[str], names: list[str], **fields: Any
) -> DriftReport:
    """The report, with the columns found on one side only (``names``: the current data's columns).

    The engines build each column's numbers as a dict while they test; here they become the
    typed :class:`ColumnDrift` every reader outside this package gets."""
    known = set(reference.columns) | set(reference.skipped)
    fields["columns"] = {name: ColumnDrift.from_dict(col) for name, col in fields["columns"].items()}
    return DriftReport(
        dataset_share_threshold=settings.dataset_share,
        method=settings.method.value,
        only_in_reference=[c for c in wanted if c in known and c not in names],
        only_in_current=[c for c in names if c not in known] if settings.columns is None else [],
        **fields,
    )


def detect_drift(
    reference: ReferenceProfile,
    current: pl.DataFrame,
    settings: DriftSection,
    *,
    exact_max_rows: int = EXACT_MAX_ROWS,
) -> DriftReport:
    """Compare ``current`` with the ``reference`` profile, column by column."""
    numeric, categorical, skipped, problems, wanted = _classify(reference, current, settings)
    chosen = ChosenTests(settings)
    results: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, DriftTestResult] = {}
    distributions: dict[str, Distribution] = {}
    sampled_current = current.height > exact_max_rows
    moments = finite_moments(current, list(numeric))
    for name, n_inf in infinite_counts(current, list(numeric)).items():
        if n_inf:
            problems[name] = f"{n_inf:,} infinite value(s) (±inf) in the current data"
            del numeric[name]
    for name in list(numeric):
        if moments[name][0] == 0:
            problems[name] = "no value in the current data (every row is null or NaN)"
            del numeric[name]
        elif (reason := _time_axis(numeric[name], moments[name][3])) is not None:
            skipped[name] = reason
            del numeric[name]
    frame = subsample(current, list(numeric), SORT_SUBSAMPLE if sampled_current else None)
    for name, values in finite_sorted(frame, list(numeric)).items():
        ref = numeric[name]
        col, distributions[name], outcomes[name] = _numeric_column(
            ref, values, moments[name], settings, chosen(name, "numeric")
        )
        col["mode"] = "exact" if ref.exact and not sampled_current else "sampled"
        _add_null_rate(col, ref.nulls, ref.count + ref.nulls, current.height - moments[name][0],
                       current.height, settings)  # fmt: skip
        results[name] = col
    for name, (values_c, counts, nulls) in category_counts(current, list(categorical)).items():
        if len(values_c) == 0:
            problems[name] = "no value in the current data (every row is null)"
            continue
        ref_c = categorical[name]
        col, distributions[name], outcomes[name] = _categorical_column(
            ref_c, values_c, counts, nulls, settings, chosen(name, "categorical")
        )
        col["mode"] = "exact"
        _add_null_rate(col, ref_c.nulls, ref_c.count + ref_c.nulls, nulls, current.height, settings)
        results[name] = col
    ordered = _decide(results, outcomes, settings, wanted)
    exact = all(col["mode"] == "exact" for col in ordered.values())
    sketch = max((len(p.sample) for n, p in numeric.items() if n in ordered), default=reference.n_rows)
    return _report(
        reference,
        settings,
        wanted,
        current.columns,
        columns=ordered,
        skipped=skipped,
        distributions=distributions,
        problems=problems,
        mode="exact" if exact else "sampled",
        table_rows={"reference": reference.n_rows, "current": current.height},
        rows_used={
            "reference": reference.n_rows if all(p.exact for p in numeric.values()) else sketch,
            "current": min(current.height, SORT_SUBSAMPLE) if sampled_current else current.height,
        },
    )


__all__ = ["ColumnDrift", "Distribution", "DriftReport", "detect_drift"]
