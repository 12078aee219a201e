"""The reference profile computed on Spark, where the data lives (``conveyor profile --spark``).

One aggregation job over the Parquet path(s) computes, per column, what the
Polars streaming engine computes (``_sketches``): rows, nulls, finite count,
mean, population σ, min and max exactly; a KLL quantile sketch per numeric
column with Spark SQL's ``kll_sketch_agg_double`` — DataSketches' binary
format, which the ``datasketches`` package deserialises here, so the two
engines' sketches are the same kind of object and merge with each other —
and an HLL distinct count (``hll_sketch_agg``) that only tells identifiers
from codes. Category counts are one ``groupBy`` per categorical column.

The profile is the one ``_sketches.stream_profile`` builds from the same
file: the same columns, the same exact numbers, quantiles within the two
sketches' rank errors (tests/spark/test_spark_sketches.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from conveyor.data._profile import (
    DEFAULT_SAMPLE_SIZE,
    MAX_PROFILE_CATEGORIES,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    ReferenceProfile,
    classify_columns,
    is_numeric,
    labelled_columns,
    temporal_kind,
)
from conveyor.data._sketches import DEFAULT_KLL_K, NumericStats
from conveyor.errors import InputError

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession
    from pyspark.sql import DataFrame as SparkFrame

# Spark SQL type names → the Polars types the column classification understands
_TYPES: dict[str, pl.DataType] = {
    "tinyint": pl.Int8(), "smallint": pl.Int16(), "int": pl.Int32(), "bigint": pl.Int64(),
    "float": pl.Float32(), "double": pl.Float64(), "string": pl.String(), "boolean": pl.Boolean(),
    "timestamp": pl.Datetime("us"), "timestamp_ntz": pl.Datetime("us"), "date": pl.Date(),
}  # fmt: skip


def read_parquet(session: SparkSession, paths: list[str]) -> SparkFrame:
    """The Parquet path(s) as a Spark DataFrame; a path Spark cannot find is one InputError line."""
    from pyspark.errors import AnalysisException

    try:
        return session.read.parquet(*paths)
    except AnalysisException as exc:
        first = (str(exc).strip().splitlines() or ["unreadable"])[0]
        raise InputError(f"{', '.join(paths)}: Spark cannot read it: {first}", path=paths[0]) from exc


def _polars_schema(frame: SparkFrame) -> pl.Schema:
    out = {}
    for name, spark_type in frame.dtypes:
        base = spark_type.split("(")[0]
        out[name] = pl.Float64() if base == "decimal" else _TYPES.get(base, pl.Binary())
    return pl.Schema(out)


def _as_double(name: str, dtype: pl.DataType) -> Column:
    from pyspark.sql import functions as sf

    if temporal_kind(dtype) is not None:
        return sf.unix_micros(sf.col(name).cast("timestamp")) / 1e6
    return sf.col(name).cast("double")


def spark_profile(
    session: SparkSession,
    paths: list[str],
    columns: list[str] | None = None,
    *,
    k: int = DEFAULT_KLL_K,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> ReferenceProfile:
    """The reference profile of Parquet ``paths``, computed by Spark (see the module docstring)."""
    from datasketches import kll_doubles_sketch
    from pyspark.sql import functions as sf

    frame = read_parquet(session, paths)
    schema = _polars_schema(frame)
    names = list(schema.names()) if columns is None else list(columns)
    missing = [c for c in names if c not in schema]
    if missing:
        raise InputError(f"cannot profile: column(s) {', '.join(map(repr, missing))} not in the data")
    labelled = labelled_columns(names, schema)
    candidates = [c for c in names if is_numeric(schema[c]) or temporal_kind(schema[c]) is not None]
    aggregates = [sf.count(sf.lit(1)).alias("rows")]
    for i, c in enumerate(candidates):
        x = _as_double(c, schema[c])
        finite = sf.when(~sf.isnan(x) & (sf.abs(x) != sf.lit(float("inf"))), x)
        aggregates += [
            sf.count(finite).alias(f"n{i}"), sf.mean(finite).alias(f"mean{i}"),
            sf.stddev_pop(finite).alias(f"std{i}"), sf.min(finite).alias(f"min{i}"),
            sf.max(finite).alias(f"max{i}"), sf.kll_sketch_agg_double(finite, k).alias(f"kll{i}"),
        ]  # fmt: skip
    for i, c in enumerate(labelled):
        value = sf.col(c).cast("string")
        aggregates += [
            sf.hll_sketch_estimate(sf.hll_sketch_agg(value)).alias(f"d{i}"),
            sf.count(value).alias(f"c{i}"),
        ]
    row: dict[str, Any] = frame.agg(*aggregates).first().asDict()  # type: ignore[union-attr]
    rows = int(row["rows"])
    distinct = {c: (int(row[f"d{i}"] or 0), int(row[f"c{i}"] or 0)) for i, c in enumerate(labelled)}
    numeric, categorical, skipped = classify_columns(names, schema, distinct)
    profiles: dict[str, ColumnProfile] = {}
    for i, c in enumerate(candidates):
        if c not in numeric:
            continue
        count = int(row[f"n{i}"] or 0)
        if count == 0:
            skipped[c] = "no finite values"
            continue
        stats = NumericStats(
            count=count, missing=0, infinite=0, mean=row[f"mean{i}"], std=row[f"std{i}"] or 0.0,
            min=row[f"min{i}"], max=row[f"max{i}"],
            sketch=kll_doubles_sketch.deserialize(bytes(row[f"kll{i}"])),
        )  # fmt: skip
        profiles[c] = NumericProfile(
            count=count, nulls=rows - count, mean=stats.mean, std=stats.std, min=stats.min, max=stats.max,
            sample=stats.order_statistics(sample_size), temporal=temporal_kind(schema[c]),
        )  # fmt: skip
    for c in categorical:
        counted = frame.groupBy(sf.col(c).cast("string").alias("v")).count()
        found = counted.limit(MAX_PROFILE_CATEGORIES + 2).collect()
        nulls = sum(int(r["count"]) for r in found if r["v"] is None)
        pairs = sorted(
            ((r["v"], int(r["count"])) for r in found if r["v"] is not None), key=lambda p: (-p[1], p[0])
        )
        if not pairs:
            skipped[c] = "no non-null values"
            continue
        counts = np.asarray([n for _, n in pairs], dtype=np.int64)
        profiles[c] = CategoricalProfile(
            count=int(counts.sum()), nulls=nulls, categories=[v for v, _ in pairs], counts=counts
        )
    return ReferenceProfile(
        n_rows=rows,
        columns={c: profiles[c] for c in names if c in profiles},
        skipped={c: skipped[c] for c in names if c in skipped},
    )


__all__ = ["read_parquet", "spark_profile"]
