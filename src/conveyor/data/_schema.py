"""A table's schema: human-editable YAML rules, and their inference from a reference table.

The file reads like this (every rule optional, unknown keys are errors)::

    version: 1
    columns:
      price: {type: float, nullable: false, min: 0, max: 550.0}
      event: {type: string, nullable: false, categories: [add_to_cart, purchase, view]}
      coupon: {type: string, nullable: true, max_null_rate: 0.35, observed_null_rate: 0.3}
      city: {type: string, nullable: false, categories: [Lyon, Paris, Rome], mostly: 0.99}
      order_id: {type: integer, nullable: false, min: 0, unique: true, identifier: true}
    key: [order_id]
    rows: {min: 500, max: 10000}
    freshness: {column: timestamp, max_age_hours: 192}
    allow_extra_columns: false
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from conveyor.data._io import read_text_file
from conveyor.errors import InputError

SCHEMA_HEADER = (
    "# Conveyor data schema: edit freely. Rules per column: type, nullable, max_null_rate,\n"
    "# min, max, categories, unique, mostly (share of non-null values that must pass min, max\n"
    "# and categories; default 1), identifier (informational); table rules: key,\n"
    "# rows {min, max}, freshness {column, max_age_hours}, allow_extra_columns.\n"
    "# NaN counts as a null.\n"
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
    # share of the non-null values that must pass min, max and categories (Great Expectations' `mostly`)
    mostly: float | None = Field(None, gt=0, le=1)
    identifier: bool = False  # informational: an id column (inferred; drift checks leave it out)


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


__all__ = ["ColumnRule", "ColumnType", "Freshness", "RowBounds", "Schema", "column_type"]
