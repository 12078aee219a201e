"""Checking a table against its :class:`Schema`.

The schema becomes a list of :class:`Check` (``plan_checks``): every counting
rule of every column, each a condition on a row. A counting engine builds the
conditions and counts them all in one pass — Polars in a single ``select``
(one parallel pass over the data), Spark in one aggregation job
(``_spark_validate``, ``validate --spark``) — and :func:`check_schema` decides
every verdict from the counts, the same code for both engines. Examples are
fetched afterwards, only for the rules that failed.

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
from typing import Any, Protocol

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


@dataclass(frozen=True)
class Check:
    """One counted rule: which rows break it — a condition each engine builds — and how to report it.

    ``rule`` names the condition: ``not_null`` and ``null_rate`` (null, or NaN in a float column),
    ``min``/``max`` (beyond ``bound``, NaN left out), ``categories`` (outside ``categories``),
    ``unique`` (a non-null value seen twice), ``duplicate_key`` (``key`` seen twice), ``type`` with
    ``target`` ``integer``/``float`` (text that does not parse as one), ``whole`` (a float that is
    not an integer) or None (every row: no value of this type fits). ``examples`` says what to show:
    distinct ``values``, ``rows``, ``key`` values, or the column's ``first`` values.
    """

    rule: str
    column: str | None
    message: str
    examples: str
    is_float: bool = False
    bound: int | float | None = None
    categories: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    target: str | None = None


@dataclass(frozen=True)
class Counts:
    """What one counting pass returns: rows, each check's offending rows, non-null values, the latest time."""

    rows: int
    broken: list[int]
    non_null: dict[str, int]
    latest: Any = None


class CountingEngine(Protocol):
    """Where the rows are counted: Polars (in memory or streaming) or Spark (``_spark_validate``)."""

    def schema(self) -> pl.Schema: ...

    def count(self, checks: list[Check], non_null: list[Check], latest: str | None) -> Counts: ...

    def examples(self, check: Check) -> list[Any]: ...


Table = pl.DataFrame | pl.LazyFrame


def polars_condition(check: Check) -> pl.Expr:
    """The rows breaking ``check``, as a Polars expression."""
    col = pl.col(check.column or "")
    missing = (col.is_null() | col.is_nan()) if check.is_float else col.is_null()
    if check.rule in ("not_null", "null_rate"):
        return missing
    if check.rule == "non_null":
        return ~missing
    if check.rule in ("min", "max"):
        beyond = col < check.bound if check.rule == "min" else col > check.bound
        return beyond & col.is_not_nan() if check.is_float else beyond
    if check.rule == "categories":
        return col.is_not_null() & ~col.cast(pl.String).is_in(list(check.categories))
    if check.rule == "unique":
        return col.is_not_null() & col.is_duplicated()
    if check.rule == "duplicate_key":
        return pl.struct(list(check.key)).is_duplicated()
    if check.target == "whole":
        return col.is_not_null() & (col != col.floor())
    if check.target in ("integer", "float"):
        target = pl.Int64 if check.target == "integer" else pl.Float64
        return col.is_not_null() & col.cast(target, strict=False).is_null()
    return pl.repeat(True, pl.len())  # every row: no value of the column fits the type


class PolarsEngine:
    """Counting with Polars: a DataFrame in memory, a LazyFrame on the streaming engine."""

    def __init__(self, df: Table) -> None:
        self.df = df

    def _collect(self, query: pl.LazyFrame) -> pl.DataFrame:
        return query.collect(engine="streaming") if isinstance(self.df, pl.LazyFrame) else query.collect()

    def schema(self) -> pl.Schema:
        return self.df.lazy().collect_schema()

    def count(self, checks: list[Check], non_null: list[Check], latest: str | None) -> Counts:
        exprs = [
            pl.len().alias("__rows"),
            *(polars_condition(c).sum().alias(f"__{i}") for i, c in enumerate(checks)),
            *(polars_condition(c).sum().alias(f"__nn:{c.column}") for c in non_null),
            *([pl.col(latest).max().alias("__latest")] if latest is not None else []),
        ]
        row = self._collect(self.df.lazy().select(exprs)).row(0, named=True)
        return Counts(
            rows=int(row["__rows"]),
            broken=[int(row[f"__{i}"] or 0) for i in range(len(checks))],
            non_null={str(c.column): int(row[f"__nn:{c.column}"] or 0) for c in non_null},
            latest=row.get("__latest"),
        )

    def examples(self, check: Check) -> list[Any]:
        lazy = self.df.lazy()
        column = check.column or ""
        if check.examples == "first":  # up to five distinct non-null values of the column
            query = lazy.select(pl.col(column).drop_nulls().unique(maintain_order=True).head(MAX_EXAMPLES))
            return self._collect(query).get_column(column).to_list()
        condition = polars_condition(check)
        if check.examples == "values":  # up to five distinct offending values
            query = lazy.filter(condition).select(pl.col(column)).unique(maintain_order=True)
            return self._collect(query.head(MAX_EXAMPLES)).get_column(column).to_list()
        # up to five offending rows, as {"row": index, key column: value...}
        frame = lazy.with_row_index("row").filter(condition).head(MAX_EXAMPLES)
        return self._collect(frame.select("row", *check.key)).to_dicts()


def _type_check(name: str, expected: ColumnType, dtype: pl.DataType) -> Check:
    actual = column_type(dtype)
    target: str | None = None
    if expected in (ColumnType.INTEGER, ColumnType.FLOAT) and actual is ColumnType.STRING:
        target = expected.value
    elif expected is ColumnType.INTEGER and actual is ColumnType.FLOAT:
        target = "whole"
    message = f"expected {expected.value}, got {dtype}"
    return Check("type", name, message, "first" if target is None else "values", target=target)


def plan_checks(schema: Schema, dtypes: pl.Schema) -> tuple[list[Check], list[Check], list[Check]]:
    """The type checks, the counted rules, and the non-null counts the ``mostly`` rules need."""
    types: list[Check] = []
    checks: list[Check] = []
    non_null: list[Check] = []
    for name, rule in schema.columns.items():
        if name not in dtypes:
            continue
        is_float = dtypes[name].is_float()
        typed = _type_ok(rule.type, dtypes[name])
        if not typed:
            types.append(_type_check(name, rule.type, dtypes[name]))
        if not rule.nullable:
            checks.append(Check("not_null", name, "null values in a non-nullable column", "rows", is_float))
        elif rule.max_null_rate is not None:
            limit = rule.max_null_rate
            checks.append(Check("null_rate", name, f"null rate over {limit:g}", "rows", is_float))
        numeric = column_type(dtypes[name]) in (ColumnType.INTEGER, ColumnType.FLOAT)
        if rule.mostly is not None and rule.mostly < 1:
            non_null.append(Check("non_null", name, "", "rows", is_float))
        if typed and numeric and rule.min is not None:
            message = f"values below the minimum {rule.min}"
            checks.append(Check("min", name, message, "values", is_float, bound=rule.min))
        if typed and numeric and rule.max is not None:
            message = f"values above the maximum {rule.max}"
            checks.append(Check("max", name, message, "values", is_float, bound=rule.max))
        if rule.categories is not None:
            message = "values outside the allowed categories"
            checks.append(Check("categories", name, message, "values", categories=tuple(rule.categories)))
        if rule.unique:
            checks.append(Check("unique", name, "duplicate values in a unique column", "values"))
    if schema.key and all(k in dtypes for k in schema.key):
        key = tuple(schema.key)
        checks.append(Check("duplicate_key", ",".join(key), "duplicate keys", "key", key=key))
    return types, checks, non_null


def check_schema(engine: CountingEngine, schema: Schema, *, now: datetime | None = None) -> ValidationReport:
    """Every rule of ``schema`` on the engine's table: one counting pass, then examples of what failed."""
    dtypes = engine.schema()
    types, checks, non_null = plan_checks(schema, dtypes)
    fresh = schema.freshness
    latest = fresh.column if fresh is not None and fresh.column in dtypes else None
    counts = engine.count([*types, *checks], non_null, latest)
    height = counts.rows
    failures: list[RuleFailure] = []
    checked = 0
    for name in schema.columns:
        checked += 1
        if name not in dtypes:
            failures.append(
                RuleFailure("missing_column", name, height, f"column {name!r} is missing from the data")
            )
    if not schema.allow_extra_columns:
        checked += 1
        for name in dtypes.names():
            if name not in schema.columns:
                examples = engine.examples(Check("extra_column", name, "", "first"))
                message = f"column {name!r} is not in the schema"
                failures.append(RuleFailure("extra_column", name, height, message, examples))
    checked += sum(1 for name in schema.columns if name in dtypes)
    for check, counted in zip(types, counts.broken, strict=False):
        n_bad = height if check.target is None else counted
        message = f"{check.message} ({n_bad} rows do not fit)"
        failures.append(RuleFailure("type", check.column, n_bad, message, engine.examples(check)))
    mostly = {c.column: counts.non_null[str(c.column)] for c in non_null}
    for check, n_bad in zip(checks, counts.broken[len(types) :], strict=True):
        if check.rule == "null_rate" and not height:
            continue
        checked += 1
        note = _failed(check, n_bad, height, schema, mostly)
        if note is not None:
            failures.append(RuleFailure(check.rule, check.column, n_bad, note, engine.examples(check)))

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
    if latest is not None and fresh is not None:
        checked += 1
        failure = _freshness(counts.latest, fresh.column, fresh.max_age_hours, height, now)
        if failure is not None:
            failures.append(failure)
    return ValidationReport(n_rows=height, rules_checked=checked, failures=failures)


def _failed(
    check: Check, n_bad: int, height: int, schema: Schema, mostly: dict[str | None, int]
) -> str | None:
    """The failure's message, or None when the rule holds (null rates, ``mostly`` decided here)."""
    if check.rule == "null_rate":
        rate = n_bad / height
        limit = schema.columns[str(check.column)].max_null_rate or 0.0
        return None if rate <= limit else f"null rate {rate:.4g} over the maximum {limit:g}"
    if n_bad == 0:
        return None
    if check.rule in TOLERANT_RULES and check.column in mostly:
        share = schema.columns[str(check.column)].mostly or 1.0
        non_null = mostly[check.column]
        allowed = math.floor((1 - share) * non_null + 1e-9)  # (1 - 0.9) * 100 is 9.999…
        if n_bad <= allowed:
            return None
        more = f"more than the {allowed} allowed (mostly {share:g})"
        return f"{check.message}: {n_bad} of {non_null} values, {more}"
    return check.message


def validate_table(df: Table, schema: Schema, *, now: datetime | None = None) -> ValidationReport:
    """Check every rule of ``schema`` on ``df`` (a DataFrame, or a lazy scan read streaming)."""
    return check_schema(PolarsEngine(df), schema, now=now)


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


__all__ = [
    "Check",
    "CountingEngine",
    "Counts",
    "PolarsEngine",
    "RuleFailure",
    "ValidationReport",
    "check_schema",
    "plan_checks",
    "polars_condition",
    "validate_table",
]
