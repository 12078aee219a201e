"""Feature rows checked against a classifier's own schema: every problem names its field."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from conveyor.errors import InputError

NUMERIC = "numeric"


class BadRequest(InputError):
    """A request the server refuses: ``status`` (4xx) and the dotted ``field`` at fault."""

    def __init__(self, status: int, field: str | None, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem, field=field, status=status)
        self.status = status
        self.field = field


def check_rows(rows: Sequence[Mapping[str, Any]], feature_types: Mapping[str, str], *, prefix: str) -> None:
    """Raise :class:`BadRequest` for the first missing, unknown, mistyped or non-finite value.

    ``prefix`` is the field path of the rows (``features`` or ``rows``); batch rows are
    named ``rows.<i>.<feature>``.
    """
    single = prefix == "features"
    for i, row in enumerate(rows):
        where = prefix if single else f"{prefix}.{i}"
        if len(row) != len(feature_types) or any(name not in feature_types for name in row):
            _check_names(row, feature_types, where)
        for name, kind in feature_types.items():
            value = row[name]
            if kind == NUMERIC:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise BadRequest(422, f"{where}.{name}", f"expected a number, got {_type(value)}")
                if isinstance(value, float) and not math.isfinite(value):
                    raise BadRequest(422, f"{where}.{name}", "must be a finite number")
            elif not isinstance(value, str):
                raise BadRequest(422, f"{where}.{name}", f"expected a string, got {_type(value)}")


def _check_names(row: Mapping[str, Any], feature_types: Mapping[str, str], where: str) -> None:
    for name in feature_types:
        if name not in row:
            raise BadRequest(422, f"{where}.{name}", "missing feature")
    for name in row:
        if name not in feature_types:
            expected = ", ".join(list(feature_types)[:20])
            raise BadRequest(422, f"{where}.{name}", f"unknown feature (expected one of: {expected})")


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def rows_to_frame(rows: Sequence[Mapping[str, Any]], feature_types: Mapping[str, str]) -> pl.DataFrame:
    """Checked rows as a frame with the model's column order and types."""
    columns: dict[str, pl.Series] = {}
    for name, kind in feature_types.items():
        values = [row[name] for row in rows]
        dtype = pl.Float64 if kind == NUMERIC else pl.String
        columns[name] = pl.Series(name, values, dtype=dtype, strict=False)
    return pl.DataFrame(columns)
