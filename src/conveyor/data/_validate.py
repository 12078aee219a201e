"""Checking a table against its :class:`Schema`.

Every counting rule of every column becomes one Polars expression, and all of
them run in a single ``select`` — one parallel pass over the data. Examples
are fetched afterwards, only for the rules that failed.

NaN in a float column counts as a null (``nullable``, ``max_null_rate``) and
is left out of ``min``/``max``. A column's ``mostly`` lets that share of its
non-null values fail ``min``, ``max`` and ``categories`` before the rule fails.

A ``LazyFrame`` (a Parquet dataset larger than memory, ``validate --stream``)
runs the same expressions on Polars' streaming engine: the counting pass and
the example queries read the data in batches. ``unique`` and ``key`` rules
still hold every value of their columns (a duplicate can be anywhere).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from conveyor.data._schema import ColumnType, Schema, column_type

MAX_EXAMPLES = 5
TOLERANT_RULES = frozenset({"min", "max", "categories"})  # the rules a column's `mostly` relaxes


@dataclass(frozen=True)
class RuleFailure:
    """One broken rule: which, where, how many rows, and up to five examples."""

    rule: str
    column: str | None
    n_rows: int
    message: str
    examples: list[Any] = field(default_factory=list)

    @property
    def plain_examples(self) -> list[Any]:
        """The examples as JSON has them: dates and times as ISO text."""
        return [_plain(v) for v in self.examples]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "column": self.column,
            "n_rows": self.n_rows,
            "message": self.message,
            "examples": self.plain_examples,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of :func:`validate_table`."""

    n_rows: int
    rules_checked: int
    failures: list[RuleFailure]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.n_rows,
            "rules_checked": self.rules_checked,
            "failures": [f.to_dict() for f in self.failures],
        }


def _type_ok(expected: ColumnType, dtype: pl.DataType) -> bool:
    actual = column_type(dtype)
    if expected is ColumnType.ANY:
        return True
    if expected is ColumnType.FLOAT:
        return actual in (ColumnType.FLOAT, ColumnType.INTEGER)
    return actual is expected


Table = pl.DataFrame | pl.LazyFrame


def _collect(query: pl.LazyFrame, df: Table) -> pl.DataFrame:
    """Run ``query`` on the engine that fits ``df``: streaming for a lazy scan, in memory otherwise."""
    return query.collect(engine="streaming") if isinstance(df, pl.LazyFrame) else query.collect()


def _values(df: Table, column: str, condition: pl.Expr) -> list[Any]:
    """Up to five distinct offending values."""
    query = df.lazy().filter(condition).select(pl.col(column)).unique(maintain_order=True).head(MAX_EXAMPLES)
    return _collect(query, df).get_column(column).to_list()


def _first_values(df: Table, column: str) -> list[Any]:
    """Up to five distinct non-null values of a column."""
    query = df.lazy().select(pl.col(column).drop_nulls().unique(maintain_order=True).head(MAX_EXAMPLES))
    return _collect(query, df).get_column(column).to_list()


def _rows(df: Table, condition: pl.Expr, columns: list[str] | None = None) -> list[Any]:
    """Up to five offending rows, as ``{"row": index, column: value...}``."""
    frame = df.lazy().with_row_index("row").filter(condition).head(MAX_EXAMPLES)
    frame = frame.select("row", *(columns or []))
    return _collect(frame, df).to_dicts()


def _type_failure(df: Table, name: str, expected: ColumnType, height: int) -> RuleFailure:
    dtype = df.lazy().collect_schema()[name]
    actual = column_type(dtype)
    col = pl.col(name)
    bad: pl.Expr | None = None
    if expected in (ColumnType.INTEGER, ColumnType.FLOAT) and actual is ColumnType.STRING:
        target = pl.Int64 if expected is ColumnType.INTEGER else pl.Float64
        bad = col.is_not_null() & col.cast(target, strict=False).is_null()
    elif expected is ColumnType.INTEGER and actual is ColumnType.FLOAT:
        bad = col.is_not_null() & (col != col.floor())
    if bad is None:
        n_bad, examples = height, _first_values(df, name)
    else:
        n_bad = int(_collect(df.lazy().select(bad.sum()), df).item())
        examples = _values(df, name, bad)
    return RuleFailure(
        "type", name, n_bad, f"expected {expected.value}, got {dtype} ({n_bad} rows do not fit)", examples
    )


def validate_table(df: Table, schema: Schema, *, now: datetime | None = None) -> ValidationReport:
    """Check every rule of ``schema`` on ``df`` (a DataFrame, or a lazy scan read streaming)."""
    failures: list[RuleFailure] = []
    checked = 0
    dtypes = df.lazy().collect_schema()
    height = df.height if isinstance(df, pl.DataFrame) else int(_collect(df.select(pl.len()), df).item())
    present = set(dtypes.names())
    for name in schema.columns:
        checked += 1
        if name not in present:
            failures.append(
                RuleFailure("missing_column", name, height, f"column {name!r} is missing from the data")
            )
    if not schema.allow_extra_columns:
        checked += 1
        for name in dtypes.names():
            if name not in schema.columns:
                failures.append(
                    RuleFailure(
                        "extra_column",
                        name,
                        height,
                        f"column {name!r} is not in the schema",
                        _first_values(df, name),
                    )
                )

    # (rule, column, count expression, condition for examples, example kind, message)
    checks: list[tuple[str, str | None, pl.Expr, pl.Expr, str, str]] = []
    mostly: dict[str, tuple[float, pl.Expr]] = {}  # column -> (share that must pass, non-null count)
    for name, rule in schema.columns.items():
        if name not in present:
            continue
        col = pl.col(name)
        is_float = dtypes[name].is_float()
        missing = (col.is_null() | col.is_nan()) if is_float else col.is_null()
        checked += 1
        typed = _type_ok(rule.type, dtypes[name])
        if not typed:
            failures.append(_type_failure(df, name, rule.type, height))
        if not rule.nullable:
            checks.append(
                (
                    "not_null",
                    name,
                    missing.sum(),
                    missing,
                    "rows",
                    "null values in a non-nullable column",
                )
            )
        elif rule.max_null_rate is not None and height:
            limit = rule.max_null_rate
            checks.append(("null_rate", name, missing.sum(), missing, "rows", f"null rate over {limit:g}"))
        numeric = column_type(dtypes[name]) in (ColumnType.INTEGER, ColumnType.FLOAT)
        if rule.mostly is not None and rule.mostly < 1:
            mostly[name] = (rule.mostly, (~missing).sum().alias(f"__nn:{name}"))
        if typed and numeric and rule.min is not None:
            cond = (col < rule.min) & col.is_not_nan() if is_float else col < rule.min
            checks.append(("min", name, cond.sum(), cond, "values", f"values below the minimum {rule.min}"))
        if typed and numeric and rule.max is not None:
            cond = (col > rule.max) & col.is_not_nan() if is_float else col > rule.max
            checks.append(("max", name, cond.sum(), cond, "values", f"values above the maximum {rule.max}"))
        if rule.categories is not None:
            cond = col.is_not_null() & ~col.cast(pl.String).is_in(rule.categories)
            checks.append(
                ("categories", name, cond.sum(), cond, "values", "values outside the allowed categories")
            )
        if rule.unique:
            cond = col.is_not_null() & col.is_duplicated()
            checks.append(("unique", name, cond.sum(), cond, "values", "duplicate values in a unique column"))
    if schema.key and all(k in present for k in schema.key):
        cond = pl.struct(schema.key).is_duplicated()
        checks.append(("duplicate_key", ",".join(schema.key), cond.sum(), cond, "key", "duplicate keys"))

    fresh = schema.freshness
    fresh_expr = []
    if fresh is not None and fresh.column in present:
        fresh_expr = [pl.col(fresh.column).max().alias("__latest")]

    exprs = [
        *(c[2].alias(f"__{i}") for i, c in enumerate(checks)),
        *fresh_expr,
        *(expr for _, expr in mostly.values()),
    ]
    counts = _collect(df.lazy().select(exprs), df).row(0, named=True) if exprs else {}
    checked += len(checks)
    for i, (rule_name, column, _, cond, kind, message) in enumerate(checks):
        n_bad = int(counts[f"__{i}"] or 0)
        note = message
        if rule_name == "null_rate":
            rate = n_bad / height
            limit = schema.columns[str(column)].max_null_rate or 0.0
            if rate <= limit:
                continue
            note = f"null rate {rate:.4g} over the maximum {limit:g}"
        elif n_bad == 0:
            continue
        elif rule_name in TOLERANT_RULES and column in mostly:
            share = mostly[column][0]
            non_null = int(counts[f"__nn:{column}"] or 0)
            allowed = math.floor((1 - share) * non_null + 1e-9)  # (1 - 0.9) * 100 is 9.999…
            if n_bad <= allowed:
                continue
            note = (
                f"{message}: {n_bad} of {non_null} values, more than the {allowed} allowed (mostly {share:g})"
            )
        if kind == "values" and column is not None:
            examples = _values(df, column, cond)
        elif kind == "key":
            examples = _rows(df, cond, schema.key)
        else:
            examples = _rows(df, cond)
        failures.append(RuleFailure(rule_name, column, n_bad, note, examples))

    bounds = schema.rows
    if bounds.min is not None or bounds.max is not None:
        checked += 1
        if bounds.min is not None and height < bounds.min:
            failures.append(
                RuleFailure("row_count", None, height, f"{height} rows, fewer than the minimum {bounds.min}")
            )
        if bounds.max is not None and height > bounds.max:
            failures.append(
                RuleFailure("row_count", None, height, f"{height} rows, more than the maximum {bounds.max}")
            )
    if fresh_expr and fresh is not None:
        checked += 1
        failure = _freshness(counts["__latest"], fresh.column, fresh.max_age_hours, height, now)
        if failure is not None:
            failures.append(failure)
    return ValidationReport(n_rows=height, rules_checked=checked, failures=failures)


def _freshness(
    latest: Any, column: str, max_age_hours: float, n_rows: int, now: datetime | None
) -> RuleFailure | None:
    if latest is None:
        return RuleFailure("freshness", column, n_rows, "no timestamps at all")
    if isinstance(latest, date) and not isinstance(latest, datetime):
        latest = datetime(latest.year, latest.month, latest.day)
    if not isinstance(latest, datetime):
        return RuleFailure("freshness", column, n_rows, f"not a timestamp column (latest value {latest!r})")
    moment = now or datetime.now(UTC)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    latest_utc = latest.replace(tzinfo=UTC) if latest.tzinfo is None else latest
    age = moment - latest_utc
    if age <= timedelta(hours=max_age_hours):
        return None
    hours = age.total_seconds() / 3600
    return RuleFailure(
        "freshness",
        column,
        n_rows,
        f"stale data: the latest {column} is {hours:.1f} h old, more than {max_age_hours:g} h",
        [latest],
    )


__all__ = ["RuleFailure", "ValidationReport", "validate_table"]
