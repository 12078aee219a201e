"""Drift of a dataset larger than memory against a reference profile (``drift --stream``, ``--spark``).

The same per-column tests and decisions as :func:`detect_drift`; only where
the current side's numbers come from changes: counts, null rates, means and
categories are exact aggregates, and the sorted current sample of the numeric
tests is 10,000 order statistics read from the column's KLL sketch, so the
report's mode is ``sketch``. The reference is a stored profile (itself a
sketch of 10,000 order statistics) or a dataset profiled the same way.

Two engines compute those aggregates — Polars' streaming engine on this
machine (``_sketches.stream_statistics``) and Spark where the data lives
(``_spark_stats.spark_statistics``) — and both hand the same
:class:`StreamedStats` to :func:`drift_from_statistics`: the verdicts are
computed by one code path, so the engines agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from conveyor.config import DriftSection
from conveyor.data._drift import (
    Distribution,
    DriftReport,
    _add_null_rate,
    _categorical_column,
    _classify,
    _decide,
    _numeric_column,
    _report,
    _time_axis,
)
from conveyor.data._drift_tests import ChosenTests, DriftTestResult
from conveyor.data._profile import DEFAULT_SAMPLE_SIZE, CategoricalProfile, NumericProfile, ReferenceProfile
from conveyor.data._sketches import DEFAULT_KLL_K, StreamedStats, stream_statistics


@dataclass(frozen=True)
class DriftPlan:
    """Which current columns get which test, decided from the reference and the current schema alone."""

    columns: list[str]  # the current data's columns
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    skipped: dict[str, str]
    problems: dict[str, str]
    wanted: list[str]


def plan_drift(reference: ReferenceProfile, schema: pl.Schema, settings: DriftSection) -> DriftPlan:
    """The tests to run on data of ``schema`` (nothing is read)."""
    schema_only = pl.DataFrame(schema=schema)
    numeric, categorical, skipped, problems, wanted = _classify(reference, schema_only, settings)
    return DriftPlan(schema_only.columns, numeric, categorical, skipped, problems, wanted)


def drift_from_statistics(
    reference: ReferenceProfile,
    plan: DriftPlan,
    stats: StreamedStats,
    settings: DriftSection,
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> DriftReport:
    """The report from the current side's aggregates and sketches (either engine's)."""
    skipped, problems = dict(plan.skipped), dict(plan.problems)
    rows = stats.rows
    chosen = ChosenTests(settings)
    outcomes: dict[str, DriftTestResult] = {}
    results: dict[str, dict[str, Any]] = {}
    distributions: dict[str, Distribution] = {}
    for name, ref in plan.numeric.items():
        s = stats.numeric[name]
        if s.infinite:
            problems[name] = f"{s.infinite:,} infinite value(s) (±inf) in the current data"
            continue
        if s.count == 0:
            problems[name] = "no value in the current data (every row is null or NaN)"
            continue
        if (reason := _time_axis(ref, s.min)) is not None:
            skipped[name] = reason
            continue
        moments = (s.count, s.mean, s.std, s.min, s.max)
        col, distributions[name], outcomes[name] = _numeric_column(
            ref, s.order_statistics(sample_size), moments, settings, chosen(name, "numeric")
        )
        col["mode"] = "sketch"
        _add_null_rate(col, ref.nulls, ref.count + ref.nulls, rows - s.count, rows, settings)
        results[name] = col
    for name, ref_c in plan.categorical.items():
        cats = stats.categorical[name]
        if cats.counts is None:
            problems[name] = "more distinct values in the current data than a categorical column holds"
            continue
        values, counts = cats.sorted()
        if not values:
            problems[name] = "no value in the current data (every row is null)"
            continue
        col, distributions[name], outcomes[name] = _categorical_column(
            ref_c, values, counts, cats.nulls, settings, chosen(name, "categorical")
        )
        col["mode"] = "exact"
        _add_null_rate(col, ref_c.nulls, ref_c.count + ref_c.nulls, cats.nulls, rows, settings)
        results[name] = col
    ordered = _decide(results, outcomes, settings, plan.wanted)
    return _report(
        reference, settings, plan.wanted, plan.columns,
        columns=ordered, skipped=skipped, distributions=distributions, problems=problems, mode="sketch",
        table_rows={"reference": reference.n_rows, "current": rows},
        rows_used={"reference": reference.n_rows, "current": rows},
    )  # fmt: skip


def stream_drift(
    reference: ReferenceProfile,
    current: pl.LazyFrame,
    settings: DriftSection,
    *,
    k: int = DEFAULT_KLL_K,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> DriftReport:
    """Compare the lazily scanned ``current`` with ``reference``, in bounded memory."""
    plan = plan_drift(reference, current.collect_schema(), settings)
    stats = stream_statistics(current, list(plan.numeric), list(plan.categorical), k=k)
    return drift_from_statistics(reference, plan, stats, settings, sample_size=sample_size)


__all__ = ["DriftPlan", "drift_from_statistics", "plan_drift", "stream_drift"]
