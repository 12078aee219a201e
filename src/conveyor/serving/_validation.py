"""Feature rows checked against a classifier's own schema: every problem names its field.

The schema is the model's :class:`~conveyor.models.FeatureSpec` per feature, learned
from its training data: types, which features may be null, the categories seen and
the numeric ranges. Wrong types and forbidden nulls are refused (422); unseen
categories and out-of-range numbers are answered and flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from conveyor.errors import InputError
from conveyor.models import FeatureSpec

NUMERIC = "numeric"
UNSEEN_CATEGORY = "unseen_category"
OUT_OF_RANGE = "out_of_range"


class BadRequest(InputError):
    """A request the server refuses: ``status`` (4xx) and the dotted ``field`` at fault."""

    def __init__(self, status: int, field: str | None, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem, field=field, status=status)
        self.status = status
        self.field = field


def check_rows(
    rows: Sequence[Mapping[str, Any]], specs: Mapping[str, FeatureSpec], *, prefix: str
) -> list[dict[str, Any]]:
    """Raise :class:`BadRequest` for the first missing, unknown, mistyped or non-finite value;
    return the warnings of the values that are valid but unlike the training data.

    A null is accepted where the model saw nulls in training and refused elsewhere.
    Warnings: ``{"feature", "kind"}`` (plus ``"row"`` in a batch), kind
    ``unseen_category`` (a category not seen in training) or ``out_of_range`` (a number
    outside the training range widened by its margin, see :class:`FeatureSpec`).
    ``prefix`` is the field path of the rows (``features`` or ``rows``); batch rows are
    named ``rows.<i>.<feature>``.
    """
    single = prefix == "features"
    warnings: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        where = prefix if single else f"{prefix}.{i}"
        if len(row) != len(specs) or any(name not in specs for name in row):
            _check_names(row, specs, where)
        for name, spec in specs.items():
            value = row[name]
            if value is None:
                if not spec.nullable:
                    raise BadRequest(422, f"{where}.{name}", "must not be null (no nulls in training)")
                continue
            kind = _flag(spec, value, f"{where}.{name}")
            if kind is not None:
                warnings.append(
                    {"feature": name, "kind": kind} if single else {"feature": name, "kind": kind, "row": i}
                )
    return warnings


def _flag(spec: FeatureSpec, value: Any, field: str) -> str | None:
    """The warning kind of a non-null ``value`` (None: as in training); BadRequest if mistyped."""
    if spec.kind == NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(422, field, f"expected a number, got {_type(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(422, field, "must be a finite number")
        if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
            return OUT_OF_RANGE
        return None
    if not isinstance(value, str):
        raise BadRequest(422, field, f"expected a string, got {_type(value)}")
    if spec.categories is not None and value not in spec.categories:
        return UNSEEN_CATEGORY
    return None


def _check_names(row: Mapping[str, Any], feature_types: Mapping[str, Any], where: str) -> None:
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
