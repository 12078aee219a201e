"""A table's schema: human-editable YAML rules, and their inference from a reference table.

The file reads like this (every rule optional, unknown keys are errors)::

    version: 1
    columns:
      price: {type: float, nullable: false, min: 0, max: 550.0}
      event: {type: string, nullable: false, categories: [add_to_cart, purchase, view]}
      coupon: {type: string, nullable: true, max_null_rate: 0.35, observed_null_rate: 0.3}
    key: [order_id]
    rows: {min: 500, max: 10000}
    freshness: {column: timestamp, max_age_hours: 192}
    allow_extra_columns: false
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from conveyor.data._io import read_text_file
from conveyor.errors import InputError, UsageError

MAX_CATEGORIES = 50  # string columns with at most this many values get an allowed-values rule
RANGE_MARGIN = 0.1  # inferred numeric ranges widen the observed one by 10 % of its span each side
NULL_RATE_SLACK = 0.05  # inferred max null rate: observed rate + 5 points
ROWS_MIN_FACTOR = 0.5  # inferred row bounds: half to ten times the reference's row count
ROWS_MAX_FACTOR = 10.0
FRESHNESS_SLACK_HOURS = 7 * 24.0  # inferred freshness: the reference's age plus one week
SCHEMA_HEADER = (
    "# Conveyor data schema: edit freely. Rules per column: type, nullable, max_null_rate,\n"
    "# min, max, categories, unique; table rules: key, rows {min, max},\n"
    "# freshness {column, max_age_hours}, allow_extra_columns.\n"
)


class ColumnType(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"  # integers are accepted where floats are expected
    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"
    ANY = "any"


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnRule(_Rules):
    """The rules of one column."""

    type: ColumnType = ColumnType.ANY
    nullable: bool = True
    max_null_rate: float | None = Field(None, ge=0, le=1)
    observed_null_rate: float | None = Field(None, ge=0, le=1)  # informational, not checked
    min: int | float | None = None
    max: int | float | None = None
    categories: list[str] | None = None
    unique: bool = False


class RowBounds(_Rules):
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class Freshness(_Rules):
    column: str
    max_age_hours: float = Field(gt=0)


class Schema(_Rules):
    """Rules a table must satisfy; load and save as YAML."""

    version: Literal[1] = 1
    columns: dict[str, ColumnRule]
    key: list[str] | None = None
    rows: RowBounds = Field(default_factory=RowBounds)
    freshness: Freshness | None = None
    allow_extra_columns: bool = False

    @model_validator(mode="after")
    def _names_known(self) -> Schema:
        for name in self.key or []:
            if name not in self.columns:
                raise ValueError(f"key: column {name!r} is not in columns")
        if self.freshness is not None and self.freshness.column not in self.columns:
            raise ValueError(f"freshness.column: column {self.freshness.column!r} is not in columns")
        return self

    @classmethod
    def load(cls, path: Path | str) -> Schema:
        """Read a schema file; InputError with one line naming the file and the key."""
        path = Path(path)
        text = read_text_file(path, name="schema file", expected="a schema YAML file")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise InputError(f"{path}: invalid YAML{where}: {problem}", path=str(path)) from exc
        if not isinstance(raw, dict):
            got = "an empty file" if raw is None else type(raw).__name__
            raise InputError(f"{path}: expected a schema mapping with 'columns', got {got}", path=str(path))
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise InputError(f"{path}: {_describe(exc)}", path=str(path)) from exc

    def save(self, path: Path | str) -> None:
        """Write the schema as YAML (with a header comment explaining the rules)."""
        path = Path(path)
        data = self.model_dump(mode="json", exclude_none=True)
        # type and nullable first and always written: they are the rules people look for
        data["columns"] = {
            name: {"type": rule.type.value, "nullable": rule.nullable}
            | rule.model_dump(
                mode="json", exclude_none=True, exclude_defaults=True, exclude={"type", "nullable"}
            )
            for name, rule in self.columns.items()
        }
        text = SCHEMA_HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot write the schema: {exc.strerror}", path=str(path)) from exc


def _describe(exc: ValidationError) -> str:
    """The first pydantic error as ``key.path: problem`` (like conveyor.yaml errors)."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown rule"
    elif err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
        head, sep, rest = msg.partition(": ")
        if sep and not key:
            key, msg = head, rest
    elif err["type"] != "missing" and "input" in err:
        msg = f"{msg} (got {err['input']!r})"
    more = exc.error_count() - 1
    if more:
        msg += f" (and {more} more error{'s' if more > 1 else ''})"
    return f"{key}: {msg}" if key else msg


def column_type(dtype: pl.DataType) -> ColumnType:
    """The schema type of a Polars dtype."""
    if dtype == pl.Boolean:
        return ColumnType.BOOLEAN
    if dtype.is_integer():
        return ColumnType.INTEGER
    if dtype.is_float() or dtype.is_decimal():
        return ColumnType.FLOAT
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return ColumnType.STRING
    if isinstance(dtype, pl.Datetime):
        return ColumnType.DATETIME
    if dtype == pl.Date:
        return ColumnType.DATE
    return ColumnType.ANY


def _round_out(value: float, step: float, *, down: bool) -> float:
    if step <= 0 or not math.isfinite(value):
        return value
    scaled = value / step
    return (math.floor(scaled) if down else math.ceil(scaled)) * step


def _numeric_range(lo: float, hi: float, integer: bool) -> tuple[float, float]:
    span = hi - lo
    margin = RANGE_MARGIN * span if span > 0 else RANGE_MARGIN * max(abs(lo), 1.0)
    new_lo, new_hi = lo - margin, hi + margin
    if lo >= 0 > new_lo:  # a non-negative column stays non-negative
        new_lo = 0.0
    if integer:
        return float(math.floor(new_lo)), float(math.ceil(new_hi))
    step = 10 ** (math.floor(math.log10(margin)) - 1) if margin > 0 else 0.0
    return _round_out(new_lo, step, down=True), _round_out(new_hi, step, down=False)


def _is_identifier(name: str, kind: ColumnType) -> bool:
    """An integer column named like an identifier: ``id``, ``user_id``, ``itemId``, ``session-id``."""
    lowered = name.lower()
    return kind is ColumnType.INTEGER and (
        lowered == "id" or lowered.endswith(("_id", "-id", " id")) or name.endswith("Id")
    )


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def infer_schema(df: pl.DataFrame, *, key: list[str] | None = None, timestamp: str | None = None) -> Schema:
    """Rules that ``df`` satisfies with a margin: types, nulls, ranges, categories, key, rows, freshness."""
    for name in [*(key or []), *([timestamp] if timestamp else [])]:
        if name not in df.columns:
            raise UsageError(f"column {name!r} is not in the table (columns: {', '.join(df.columns)})")
    n = df.height
    types = {c: column_type(df.schema[c]) for c in df.columns}
    numeric = [c for c, t in types.items() if t in (ColumnType.INTEGER, ColumnType.FLOAT)]
    strings = [c for c, t in types.items() if t is ColumnType.STRING]
    stats = df.select(
        *(pl.col(c).null_count().alias(f"nulls:{c}") for c in df.columns),
        *(pl.col(c).min().cast(pl.Float64).alias(f"min:{c}") for c in numeric),
        *(pl.col(c).max().cast(pl.Float64).alias(f"max:{c}") for c in numeric),
        *(pl.col(c).n_unique().alias(f"unique:{c}") for c in strings),
    ).row(0, named=True)
    columns: dict[str, ColumnRule] = {}
    for c in df.columns:
        nulls = int(stats[f"nulls:{c}"])
        rate = nulls / n if n else 0.0
        rule: dict[str, Any] = {"type": types[c], "nullable": nulls > 0}
        if nulls:
            rule["observed_null_rate"] = round(rate, 6)
            rule["max_null_rate"] = min(1.0, round(rate + NULL_RATE_SLACK, 4))
        if c in numeric and stats[f"min:{c}"] is not None and _is_identifier(c, types[c]):
            # identifiers grow (new users, items, sessions): only their sign is a rule
            if stats[f"min:{c}"] >= 0:
                rule["min"] = 0
        elif c in numeric and stats[f"min:{c}"] is not None:
            lo, hi = _numeric_range(stats[f"min:{c}"], stats[f"max:{c}"], types[c] is ColumnType.INTEGER)
            rule["min"], rule["max"] = (int(lo), int(hi)) if types[c] is ColumnType.INTEGER else (lo, hi)
        if c in strings:
            distinct = int(stats[f"unique:{c}"]) - (1 if nulls else 0)
            if 0 < distinct <= MAX_CATEGORIES and distinct <= max(1, n // 2):
                values = df.get_column(c).drop_nulls().cast(pl.String).unique().sort()
                rule["categories"] = values.to_list()
        columns[c] = ColumnRule.model_validate(rule)
    if key and len(key) == 1 and df.get_column(key[0]).is_unique().all():
        columns[key[0]] = columns[key[0]].model_copy(update={"unique": True})
    freshness = _infer_freshness(df, types, timestamp)
    return Schema(
        columns=columns,
        key=key or None,
        rows=RowBounds(min=max(1, math.floor(n * ROWS_MIN_FACTOR)), max=math.ceil(n * ROWS_MAX_FACTOR)),
        freshness=freshness,
    )


def _infer_freshness(
    df: pl.DataFrame, types: dict[str, ColumnType], timestamp: str | None
) -> Freshness | None:
    if timestamp is None:
        candidates = [c for c, t in types.items() if t is ColumnType.DATETIME]
        if len(candidates) != 1:
            return None
        timestamp = candidates[0]
    elif types[timestamp] not in (ColumnType.DATETIME, ColumnType.DATE):
        raise UsageError(
            f"--timestamp {timestamp}: column is {df.schema[timestamp]}, expected a date or datetime"
        )
    latest = df.get_column(timestamp).max()
    if latest is None:
        return None
    if not isinstance(latest, datetime):  # a date
        latest = datetime(latest.year, latest.month, latest.day)  # type: ignore[union-attr]
    age_hours = max(0.0, (datetime.now(UTC) - _as_utc(latest)).total_seconds() / 3600)
    return Freshness(column=timestamp, max_age_hours=float(math.ceil(age_hours + FRESHNESS_SLACK_HOURS)))


__all__ = ["ColumnRule", "ColumnType", "Freshness", "RowBounds", "Schema", "column_type", "infer_schema"]
