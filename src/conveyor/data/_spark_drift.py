"""Drift computed where the data lives (``conveyor drift --spark``).

The current data — Parquet path(s), folders or globs, or ``table:NAME`` — is
read by Spark, and one aggregation job computes, for every numeric column the
reference tests, what the streaming engine computes batch by batch: rows,
finite count, ±inf, mean, population σ, min, max, and a KLL sketch
(``kll_sketch_agg_double``, DataSketches' binary format, deserialised here);
one ``groupBy`` job counts the categorical columns' values exactly. Those
numbers become the same :class:`StreamedStats` the Polars engine builds, and
:func:`drift_from_statistics` decides — one code path, so ``--spark`` and
``--stream`` give the same verdicts (tests/spark/test_spark_checks.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.config import DriftSection
from conveyor.data._drift import DriftReport
from conveyor.data._drift_stream import drift_from_statistics, plan_drift
from conveyor.data._profile import DEFAULT_SAMPLE_SIZE, ReferenceProfile
from conveyor.data._sketches import DEFAULT_KLL_K, StreamedStats
from conveyor.data._spark_sketches import (
    category_counts,
    numeric_aggregates,
    numeric_stats,
    run_aggregation,
    spark_schema,
)

if TYPE_CHECKING:
    import polars as pl
    from pyspark.sql import DataFrame as SparkFrame


def spark_statistics(
    frame: SparkFrame,
    schema: pl.Schema,
    numeric: list[str],
    categorical: list[str],
    *,
    k: int = DEFAULT_KLL_K,
) -> StreamedStats:
    """Exact aggregates and KLL sketches of ``numeric``, value counts of ``categorical``, on Spark."""
    from pyspark.sql import functions as sf

    aggregates = [sf.count(sf.lit(1)).alias("rows")]
    for i, c in enumerate(numeric):
        aggregates += numeric_aggregates(i, c, schema[c], k)
    row = run_aggregation(frame, aggregates, "the drift aggregation")
    return StreamedStats(
        rows=int(row["rows"]),
        numeric={c: numeric_stats(row, i, k) for i, c in enumerate(numeric)},
        categorical=category_counts(frame, categorical),
    )


def spark_drift(
    reference: ReferenceProfile,
    current: SparkFrame,
    settings: DriftSection,
    *,
    k: int = DEFAULT_KLL_K,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> DriftReport:
    """Compare the Spark frame ``current`` with ``reference`` (see the module docstring)."""
    schema = spark_schema(current)
    plan = plan_drift(reference, schema, settings)
    stats = spark_statistics(current, schema, list(plan.numeric), list(plan.categorical), k=k)
    return drift_from_statistics(reference, plan, stats, settings, sample_size=sample_size)


__all__ = ["spark_drift", "spark_statistics"]
