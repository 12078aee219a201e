"""Tabular features → a float matrix, the same way at training and at serving time.

Numbers (and booleans, dates) pass through as floats with missing values as
NaN — all three tree libraries handle NaN natively. String and categorical
columns are ordinal-encoded against the categories seen in training (sorted,
so the code of a category does not depend on row order); a category never
seen in training becomes -1 rather than an error, so a new product line does
not take the endpoint down. Ordinal codes suit tree ensembles (they split on
thresholds) and keep one encoding for all three libraries. The encoding is
stored in the model's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from conveyor.errors import InputError

NUMERIC = "numeric"
CATEGORICAL = "categorical"
UNKNOWN_CODE = -1.0


@dataclass(frozen=True)
class FeatureEncoding:
    """Column order, kinds and categories learned from the training frame."""

    names: list[str]
    types: dict[str, str]
    categories: dict[str, list[str]]

    @classmethod
    def learn(cls, frame: pl.DataFrame) -> FeatureEncoding:
        types: dict[str, str] = {}
        categories: dict[str, list[str]] = {}
        for name, dtype in frame.schema.items():
            if dtype.is_numeric() or dtype == pl.Boolean or dtype.is_temporal():
                types[name] = NUMERIC
            elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
                types[name] = CATEGORICAL
                values = frame[name].cast(pl.String).drop_nulls().unique().sort()
                categories[name] = values.to_list()
            else:
                raise InputError(f"feature column {name!r} has unsupported type {dtype}")
        return cls(names=list(frame.columns), types=types, categories=categories)

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
        return {"names": self.names, "types": self.types, "categories": self.categories}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureEncoding:
        return cls(names=list(raw["names"]), types=dict(raw["types"]), categories=dict(raw["categories"]))
