"""Tabular features → a float matrix, the same way at training and at serving time.

Numbers (and booleans, dates) pass through as floats with missing values as
NaN — all three tree libraries handle NaN natively. String and categorical
columns are ordinal-encoded against the categories seen in training (sorted,
so the code of a category does not depend on row order); a category never
seen in training becomes -1 rather than an error, so a new product line does
not take the endpoint down. Ordinal codes suit tree ensembles (they split on
thresholds) and keep one encoding for all three libraries. The encoding is
stored in the model's manifest.

The encoding also keeps what serving needs to check a request against the
training data (:class:`FeatureSpec`): which features had nulls (only those
accept a null) and each numeric feature's observed range, widened by
``RANGE_MARGIN`` of its span on each side (never below 0 when the training
values were all ≥ 0): a value outside is answered but flagged ``out_of_range``.
Manifests written before these were kept load with no nulls allowed and no
range known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from conveyor.errors import InputError

NUMERIC = "numeric"
CATEGORICAL = "categorical"
UNKNOWN_CODE = -1.0
RANGE_MARGIN = 0.1  # share of the training span added on each side of the observed range


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature as the model was trained on it (what a request is checked against).

    ``categories``: the categories seen in training (categorical features);
    ``low``/``high``: the range beyond which a numeric value is flagged (None: unknown).
    """

    name: str
    kind: str  # "numeric" | "categorical"
    nullable: bool = False
    categories: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None


def flag_bounds(minimum: float, maximum: float) -> tuple[float, float]:
    """The observed ``[minimum, maximum]`` widened by ``RANGE_MARGIN`` of the span each side;
    a non-negative feature keeps 0 as its lower bound."""
    margin = RANGE_MARGIN * (maximum - minimum)
    low = minimum - margin
    if minimum >= 0:
        low = max(low, 0.0)
    return low, maximum + margin


@dataclass(frozen=True)
class FeatureEncoding:
    """Column order, kinds and categories learned from the training frame."""

    names: list[str]
    types: dict[str, str]
    categories: dict[str, list[str]]
    nullable: dict[str, bool] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # observed min, max

    @classmethod
    def learn(cls, frame: pl.DataFrame) -> FeatureEncoding:
        types: dict[str, str] = {}
        categories: dict[str, list[str]] = {}
        nullable = {name: frame[name].null_count() > 0 for name in frame.columns}
        ranges: dict[str, tuple[float, float]] = {}
        for name, dtype in frame.schema.items():
            if dtype.is_numeric() or dtype == pl.Boolean or dtype.is_temporal():
                types[name] = NUMERIC
                if dtype.is_numeric() and dtype != pl.Boolean:
                    values = frame[name].cast(pl.Float64).fill_nan(None).drop_nulls()
                    if values.len():
                        ranges[name] = (float(values.min()), float(values.max()))  # type: ignore[arg-type]
            elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
                types[name] = CATEGORICAL
                values = frame[name].cast(pl.String).drop_nulls().unique().sort()
                categories[name] = values.to_list()
            else:
                raise InputError(f"feature column {name!r} has unsupported type {dtype}")
        return cls(list(frame.columns), types, categories, nullable, ranges)

    def specs(self) -> dict[str, FeatureSpec]:
        """Name → :class:`FeatureSpec`, in training column order."""
        out: dict[str, FeatureSpec] = {}
        for name in self.names:
            cats = self.categories.get(name)
            low = high = None
            if name in self.ranges:
                low, high = flag_bounds(*self.ranges[name])
            out[name] = FeatureSpec(
                name=name,
                kind=self.types[name],
                nullable=self.nullable.get(name, False),
                categories=tuple(cats) if cats is not None else None,
                low=low,
                high=high,
            )
        return out

    def transform(self, rows: pl.DataFrame) -> np.ndarray:
        """Rows → float64 matrix in training column order (extra columns are ignored)."""
        missing = [n for n in self.names if n not in rows.columns]
        if missing:
            raise InputError(f"missing feature column(s) {missing}; the model expects {self.names}")
        exprs: list[pl.Expr] = []
        for name in self.names:
            col = pl.col(name)
            if self.types[name] == CATEGORICAL:
                mapping = {c: float(j) for j, c in enumerate(self.categories[name])}
                exprs.append(
                    col.cast(pl.String).replace_strict(mapping, default=UNKNOWN_CODE, return_dtype=pl.Float64)
                )
            else:
                dtype = rows.schema[name]
                if dtype.is_temporal():
                    col = col.to_physical()
                elif not (dtype.is_numeric() or dtype in (pl.Boolean, pl.Null)):
                    raise InputError(f"feature column {name!r} must be numeric, got {dtype}")
                exprs.append(col.cast(pl.Float64))
        try:
            matrix = rows.select(exprs).to_numpy()
        except pl.exceptions.PolarsError as exc:
            raise InputError(f"features cannot be encoded: {exc}") from exc
        return np.ascontiguousarray(matrix, dtype=np.float64)  # nulls arrive as NaN

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "types": self.types,
            "categories": self.categories,
            "nullable": self.nullable,
            "ranges": {name: list(bounds) for name, bounds in self.ranges.items()},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureEncoding:
        ranges = {str(k): (float(v[0]), float(v[1])) for k, v in dict(raw.get("ranges", {})).items()}
        return cls(
            names=list(raw["names"]),
            types=dict(raw["types"]),
            categories=dict(raw["categories"]),
            nullable={str(k): bool(v) for k, v in dict(raw.get("nullable", {})).items()},
            ranges=ranges,
        )
