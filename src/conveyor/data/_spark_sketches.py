"""The reference profile computed on Spark, where the data lives (``conveyor profile --spark``).

One aggregation job over the Parquet path(s) computes, per column, what the
Polars streaming engine computes (``_sketches``): rows, nulls, finite count,
mean, population σ, min and max exactly; a KLL quantile sketch per numeric
column with Spark SQL's ``kll_sketch_agg_double`` — DataSketches' binary
format, which the ``datasketches`` package deserialises here, so the two
engines' sketches are the same kind of object and merge with each other —
and an HLL distinct count (``hll_sketch_agg``) that only tells identifiers
from codes. Category counts are one ``groupBy`` job for every categorical
column at once (``category_counts``).

The profile is the one ``_sketches.stream_profile`` builds from the same
file: the same columns, the same exact numbers, quantiles within the two
sketches' rank errors (tests/spark/test_spark_sketches.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

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
from conveyor.data._sketches import DEFAULT_KLL_K, CategoryStats, NumericStats
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


TABLE_PREFIX = "table:"  # a source naming a table of Spark's catalog instead of Parquet path(s)


def read_parquet(session: SparkSession, paths: list[str]) -> SparkFrame:
    """The Parquet path(s) as a Spark DataFrame; a path Spark cannot find is one InputError line.

    Files are looked up recursively and folder names are not read as partition columns, as the
    streaming engine reads a folder (``scan_dataset``), so that both engines see the same columns.
    """
    from pyspark.errors import AnalysisException

    try:
        return session.read.option("recursiveFileLookup", "true").parquet(*paths)
    except AnalysisException as exc:
        first = (str(exc).strip().splitlines() or ["unreadable"])[0]
        raise InputError(f"{', '.join(paths)}: Spark cannot read it: {first}", path=paths[0]) from exc


def read_spark_source(session: SparkSession, sources: list[str]) -> SparkFrame:
    """Parquet path(s) or glob(s), or ``table:NAME`` — a table of Spark's catalog — as a DataFrame."""
    from pyspark.errors import AnalysisException

    tables = [s for s in sources if s.startswith(TABLE_PREFIX)]
    if not tables:
        return read_parquet(session, sources)
    if len(sources) > 1:
        raise InputError(f"{', '.join(sources)}: read one table, or Parquet paths, not both")
    name = tables[0].removeprefix(TABLE_PREFIX).strip()
    try:
        return session.table(name)
    except AnalysisException as exc:
        first = (str(exc).strip().splitlines() or ["unreadable"])[0]
        raise InputError(f"table {name!r}: Spark cannot read it: {first}", path=name) from exc


@contextlib.contextmanager
def spark_job(what: str) -> Iterator[None]:
    """Run Spark jobs; data Spark cannot read is one InputError line (exit 2), another failure exit 1."""
    from py4j.protocol import Py4JError
    from pyspark.errors import AnalysisException, PySparkException

    from conveyor.spark import java_message, spark_failure

    try:
        yield
    except AnalysisException as exc:
        raise InputError(f"{what} failed on Spark: {java_message(exc)}") from exc
    except (PySparkException, Py4JError) as exc:
        raise spark_failure(exc, what) from exc


def run_aggregation(frame: SparkFrame, aggregates: list[Column], what: str) -> dict[str, Any]:
    """One aggregation job's single row."""
    with spark_job(what):
        row = frame.agg(*aggregates).first()
    return row.asDict() if row is not None else {}


def spark_schema(frame: SparkFrame) -> pl.Schema:
    """The Spark frame's columns as the Polars types the column classification understands."""
    return _polars_schema(frame)


def numeric_aggregates(i: int, name: str, dtype: pl.DataType, k: int) -> list[Column]:
    """The exact aggregates and the KLL sketch of numeric column ``name`` (aliases ending in ``i``)."""
    from pyspark.sql import functions as sf

    x = _as_double(name, dtype)
    infinite = sf.abs(x) == sf.lit(float("inf"))
    finite = sf.when(~sf.isnan(x) & ~infinite, x)
    return [
        sf.count(finite).alias(f"n{i}"), sf.mean(finite).alias(f"mean{i}"),
        sf.stddev_pop(finite).alias(f"std{i}"), sf.min(finite).alias(f"min{i}"),
        sf.max(finite).alias(f"max{i}"), sf.kll_sketch_agg_double(finite, k).alias(f"kll{i}"),
        sf.count(sf.when(infinite, 1)).alias(f"inf{i}"),
    ]  # fmt: skip


def numeric_stats(row: dict[str, Any], i: int, k: int) -> NumericStats:
    """Column ``i``'s :class:`NumericStats` from the row of :func:`numeric_aggregates`."""
    from datasketches import kll_doubles_sketch

    count, infinite = int(row[f"n{i}"] or 0), int(row[f"inf{i}"] or 0)
    blob = row[f"kll{i}"]
    return NumericStats(
        count=count, missing=int(row["rows"]) - count - infinite, infinite=infinite,
        mean=row[f"mean{i}"] or 0.0, std=row[f"std{i}"] or 0.0, min=row[f"min{i}"] or 0.0,
        max=row[f"max{i}"] or 0.0,
        sketch=kll_doubles_sketch.deserialize(bytes(blob)) if blob is not None else kll_doubles_sketch(k),
    )  # fmt: skip


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


def category_counts(frame: SparkFrame, columns: list[str]) -> dict[str, CategoryStats]:
    """Exact value counts of ``columns``, all in one ``groupBy`` job (the columns stacked as pairs).

    A column with more than ``MAX_PROFILE_CATEGORIES`` values gets ``counts=None`` (as the streaming
    engine's :class:`CategoryStats`); only its most frequent ones reach the driver.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    found = {c: CategoryStats() for c in columns}
    if not columns:
        return found
    pairs = sf.array(
        *(
            sf.struct(sf.lit(i).alias("c"), sf.col(name).cast("string").alias("v"))
            for i, name in enumerate(columns)
        )
    )
    counted = frame.select(sf.explode(pairs).alias("p")).groupBy("p.c", "p.v").count()
    rank = sf.row_number().over(Window.partitionBy("c").orderBy(sf.desc("count"), "v"))
    with spark_job("counting categories"):
        kept = counted.withColumn("r", rank).where(sf.col("r") <= MAX_PROFILE_CATEGORIES + 2).collect()
    for r in kept:
        found[columns[int(r["c"])]].add([r["v"]], [int(r["count"])])
    return found


def spark_profile(
    session: SparkSession,
    paths: list[str],
    columns: list[str] | None = None,
    *,
    k: int = DEFAULT_KLL_K,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> ReferenceProfile:
    """The reference profile of Parquet ``paths`` or ``table:NAME``, computed by Spark (module docstring)."""
    from pyspark.sql import functions as sf

    frame = read_spark_source(session, paths)
    schema = _polars_schema(frame)
    names = list(schema.names()) if columns is None else list(columns)
    missing = [c for c in names if c not in schema]
    if missing:
        raise InputError(f"cannot profile: column(s) {', '.join(map(repr, missing))} not in the data")
    labelled = labelled_columns(names, schema)
    candidates = [c for c in names if is_numeric(schema[c]) or temporal_kind(schema[c]) is not None]
    aggregates = [sf.count(sf.lit(1)).alias("rows")]
    for i, c in enumerate(candidates):
        aggregates += numeric_aggregates(i, c, schema[c], k)
    for i, c in enumerate(labelled):
        value = sf.col(c).cast("string")
        aggregates += [
            sf.hll_sketch_estimate(sf.hll_sketch_agg(value)).alias(f"d{i}"),
            sf.count(value).alias(f"c{i}"),
        ]
    row = run_aggregation(frame, aggregates, "the profile's aggregation")
    rows = int(row["rows"])
    distinct = {c: (int(row[f"d{i}"] or 0), int(row[f"c{i}"] or 0)) for i, c in enumerate(labelled)}
    numeric, categorical, skipped = classify_columns(names, schema, distinct)
    profiles: dict[str, ColumnProfile] = {}
    for i, c in enumerate(candidates):
        if c not in numeric:
            continue
        stats = numeric_stats(row, i, k)
        if stats.count == 0:
            skipped[c] = "no finite values"
            continue
        profiles[c] = NumericProfile(
            count=stats.count, nulls=rows - stats.count, mean=stats.mean, std=stats.std, min=stats.min,
            max=stats.max, sample=stats.order_statistics(sample_size), temporal=temporal_kind(schema[c]),
        )  # fmt: skip
    for c, cats in category_counts(frame, categorical).items():
        values, counts = cats.sorted()
        if not values:
            skipped[c] = "no non-null values" if cats.counts is not None else "too many distinct values"
            continue
        profiles[c] = CategoricalProfile(
            count=int(counts.sum()), nulls=cats.nulls, categories=values, counts=counts
        )
    return ReferenceProfile(
        n_rows=rows,
        columns={c: profiles[c] for c in names if c in profiles},
        skipped={c: skipped[c] for c in names if c in skipped},
    )


__all__ = [
    "TABLE_PREFIX",
    "category_counts",
    "numeric_aggregates",
    "numeric_stats",
    "read_parquet",
    "read_spark_source",
    "run_aggregation",
    "spark_job",
    "spark_profile",
    "spark_schema",
]
