"""Validation computed where the data lives (``conveyor validate --spark``).

The schema's rules are the same :class:`Check` list the Polars engine counts
(``_validate.plan_checks``); here each becomes a Spark SQL condition, and one
aggregation job counts every one of them — nulls, values out of range or out
of the allowed categories, text that is not a number — with the rows, the
non-null counts ``mostly`` needs and the latest timestamp. ``unique`` and
``key`` rules are one ``groupBy`` job each (a duplicate can be anywhere).
:func:`check_schema` then decides every verdict from the counts, the same
code as ``validate`` and ``validate --stream``, so the engines agree.

Examples are fetched afterwards, only for the failed rules (a filtered
``limit(5)`` job each): up to five offending values, or duplicate keys. A
distributed table has no row numbers, so ``not_null`` and ``null_rate``
failures carry no example rows on Spark.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conveyor.data._schema import Schema
from conveyor.data._spark_sketches import run_aggregation, spark_job, spark_schema
from conveyor.data._validate import MAX_EXAMPLES, Check, Counts, ValidationReport, check_schema

if TYPE_CHECKING:
    import polars as pl
    from pyspark.sql import Column
    from pyspark.sql import DataFrame as SparkFrame

GROUPED_RULES = frozenset({"unique", "duplicate_key"})  # counted by a groupBy job, not the aggregation


def spark_condition(check: Check) -> Column:
    """The rows breaking ``check``, as a Spark SQL condition (the rules of ``polars_condition``)."""
    from pyspark.sql import functions as sf

    col = sf.col(f"`{check.column}`")
    missing = (col.isNull() | sf.isnan(col)) if check.is_float else col.isNull()
    if check.rule in ("not_null", "null_rate"):
        return missing
    if check.rule == "non_null":
        return ~missing
    if check.rule in ("min", "max"):
        beyond = col < sf.lit(check.bound) if check.rule == "min" else col > sf.lit(check.bound)
        return beyond & ~sf.isnan(col) if check.is_float else beyond  # Spark orders NaN above every number
    if check.rule == "categories":
        return col.isNotNull() & ~col.cast("string").isin(list(check.categories))
    if check.target == "whole":
        return col.isNotNull() & ~sf.isnan(col) & (col != sf.round(col, 0))
    if check.target in ("integer", "float"):
        return col.isNotNull() & col.try_cast("bigint" if check.target == "integer" else "double").isNull()
    return sf.lit(True)  # every row: no value of the column fits the type


class SparkEngine:
    """Counting a Spark DataFrame: one aggregation job, plus a groupBy job per uniqueness rule."""

    def __init__(self, frame: SparkFrame) -> None:
        self.frame = frame
        self.columns = spark_schema(frame)
        self.spark_types = dict(frame.dtypes)

    def schema(self) -> pl.Schema:
        return self.columns

    def _duplicates(self, check: Check) -> SparkFrame:
        """The duplicated values (or keys) of ``check`` with their ``count``."""
        from pyspark.sql import functions as sf

        names = list(check.key) if check.rule == "duplicate_key" else [str(check.column)]
        frame = self.frame
        if check.rule == "unique":
            frame = frame.where(sf.col(f"`{check.column}`").isNotNull())
        return frame.groupBy(*(sf.col(f"`{n}`") for n in names)).count().where(sf.col("count") > 1)

    def _latest(self, name: str) -> Column:
        from pyspark.sql import functions as sf

        if self.spark_types[name] == "timestamp":  # an instant: collect it as UTC microseconds
            return sf.unix_micros(sf.max(sf.col(f"`{name}`"))).alias("latest")
        return sf.max(sf.col(f"`{name}`")).alias("latest")

    def count(self, checks: list[Check], non_null: list[Check], latest: str | None) -> Counts:
        from pyspark.sql import functions as sf

        aggregates = [sf.count(sf.lit(1)).alias("rows")]
        aggregates += [
            sf.count(sf.when(spark_condition(c), 1)).alias(f"b{i}")
            for i, c in enumerate(checks)
            if c.rule not in GROUPED_RULES
        ]
        aggregates += [
            sf.count(sf.when(spark_condition(c), 1)).alias(f"nn{i}") for i, c in enumerate(non_null)
        ]
        if latest is not None:
            aggregates.append(self._latest(latest))
        row = run_aggregation(self.frame, aggregates, "the validation aggregation")
        broken = []
        for i, c in enumerate(checks):
            if c.rule in GROUPED_RULES:
                with spark_job(f"the {c.rule} rule on {c.column}"):
                    total = self._duplicates(c).agg(sf.sum("count")).first()
                broken.append(int((total[0] if total is not None else 0) or 0))
            else:
                broken.append(int(row[f"b{i}"] or 0))
        moment = row.get("latest")
        if latest is not None and self.spark_types[latest] == "timestamp" and moment is not None:
            moment = datetime.fromtimestamp(moment / 1e6, UTC)
        return Counts(
            rows=int(row["rows"]),
            broken=broken,
            non_null={str(c.column): int(row[f"nn{i}"] or 0) for i, c in enumerate(non_null)},
            latest=moment,
        )

    def examples(self, check: Check) -> list[Any]:
        from pyspark.sql import functions as sf

        if check.examples == "rows":
            return []  # no row numbers in a distributed table
        with spark_job(f"examples of the {check.rule} rule"):
            if check.rule in GROUPED_RULES:
                rows = self._duplicates(check).drop("count").limit(MAX_EXAMPLES).collect()
                if check.rule == "duplicate_key":
                    return [r.asDict() for r in rows]
                return [r[0] for r in rows]
            col = sf.col(f"`{check.column}`")
            condition = col.isNotNull() if check.examples == "first" else spark_condition(check)
            found = self.frame.where(condition).select(col).distinct().limit(MAX_EXAMPLES).collect()
        return [r[0] for r in found]


def spark_validate(frame: SparkFrame, schema: Schema, *, now: datetime | None = None) -> ValidationReport:
    """Check every rule of ``schema`` on the Spark frame (see the module docstring)."""
    return check_schema(SparkEngine(frame), schema, now=now)


__all__ = ["SparkEngine", "spark_condition", "spark_validate"]
