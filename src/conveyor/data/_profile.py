"""Reference profiles: the compact statistics a later drift check compares against.

Computed once (at training time) and stored as JSON, so that a drift check
reads only the current data and this file — never the reference table again.

- numeric column: count, nulls, mean, standard deviation, min, max and a
  sorted sample of at most ``sample_size`` values. When the column has more
  values, the sample is its evenly spaced order statistics (the values at
  quantile levels (i + ½)/k), which trace the reference distribution far more
  closely than a random sample of the same size; with fewer values it is the
  whole column and the drift tests are exactly scipy's on the full data.
- datetime and date columns are numeric columns of epoch seconds
  (``temporal`` names the kind), so that they are compared as timestamps.
- categorical column (strings, categoricals, booleans, and integer codes with
  at most ``MAX_CODE_VALUES`` distinct values — a class label, a rating, a
  weekday): the count of every value.
- identifier-like columns are not profiled; the reason is kept in ``skipped``
  (see :func:`identifier_reason`): strings with more than
  ``MAX_PROFILE_CATEGORIES`` distinct values or mostly distinct values, and
  integers named like an identifier (``id``, ``user_id``, ``FlightNum``,
  ``zip_code``) or almost all distinct (a key). Their values change by design
  (new users, new items), so a distribution test on them measures nothing.

``sample_size=None`` keeps every finite value of every numeric column (the
exact mode of ``conveyor drift``); the default keeps a sketch of 10,000 order
statistics (what a stored profile holds).

Sizes: 10,000 float64 values are 107 kB of base64 per numeric column.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conveyor.data._io import read_text_file
from conveyor.errors import InputError

DEFAULT_SAMPLE_SIZE = 10_000
# Tables longer than this are subsampled (seeded, without replacement) before sorting: the order
# statistics of 200,000 random rows trace the distribution to ~1/450 of its spread, and sorting
# 1M-row columns would cost most of a drift check's time budget.
SORT_SUBSAMPLE = 200_000
SUBSAMPLE_SEED = 0
MAX_PROFILE_CATEGORIES = 1_000
# Exact drift tests (every value of both tables) up to this many rows. At 1M rows they cost about
# 0.55 s per numeric column on the shared 2-core machine (0.11 s sampled), at 2M 1.5 s (0.22 s);
# above 1M the cost keeps growing while the sampled mode's distance stays within 0.006 of the exact
# one, against a threshold of 0.1 (benchmarks/drift_sampling.py, docs/benchmarks.md).
EXACT_MAX_ROWS = 1_000_000
MAX_CODE_VALUES = 20  # integer columns with at most this many distinct values are categorical codes
ID_DISTINCT_SHARE = 0.95  # integer columns this distinct (and ID_MIN_ROWS long) are keys
STRING_ID_DISTINCT_SHARE = 0.5  # string columns this distinct, beyond MAX_CODE_VALUES values, are ids/text
ID_MIN_ROWS = 50
ID_NAME_SUFFIXES = ("id", "number", "num", "nr", "no", "code", "key", "zip", "zipcode", "phone")
PROFILE_FORMAT = "conveyor-reference-profile"
PROFILE_VERSION = 1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class NumericProfile:
    count: int  # finite values
    nulls: int  # nulls, NaN and infinities
    mean: float
    std: float  # population standard deviation (ddof=0)
    min: float
    max: float
    sample: FloatArray  # sorted
    temporal: str | None = None  # "datetime" or "date": values are epoch seconds

    kind: Literal["numeric"] = "numeric"

    @property
    def exact(self) -> bool:
        """True when the sample holds every finite value of the reference (no sketch)."""
        return len(self.sample) == self.count


@dataclass(frozen=True)
class CategoricalProfile:
    count: int  # non-null values
    nulls: int
    categories: list[str]
    counts: IntArray

    kind: Literal["categorical"] = "categorical"


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    """Per-column reference statistics; ``save``/``load`` as JSON."""

    n_rows: int
    columns: dict[str, ColumnProfile]
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it has no profile

    def to_dict(self) -> dict[str, Any]:
        return _ProfileFile(
            format=PROFILE_FORMAT,
            version=PROFILE_VERSION,
            n_rows=self.n_rows,
            columns={name: _column_to_file(p) for name, p in self.columns.items()},
            skipped=self.skipped,
        ).model_dump(mode="json")

    def save(self, path: Path | str) -> None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot write the profile: {exc.strerror}", path=str(path)) from exc

    @classmethod
    def load(cls, path: Path | str) -> ReferenceProfile:
        """Read a profile saved by :meth:`save`; InputError with one line when unreadable."""
        path = Path(path)
        text = read_text_file(path, name="reference profile", expected="a reference profile")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}: reference profile is not valid JSON (line {exc.lineno}: {exc.msg})", path=str(path)
            ) from exc
        if not isinstance(raw, dict) or raw.get("format") != PROFILE_FORMAT:
            raise InputError(f"{path}: not a Conveyor reference profile", path=str(path))
        try:
            parsed = _ProfileFile.model_validate(raw)
            columns = {name: _column_from_file(c) for name, c in parsed.columns.items()}
        except (ValidationError, ValueError) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise InputError(f"{path}: corrupt reference profile: {detail}", path=str(path)) from exc
        return cls(n_rows=parsed.n_rows, columns=columns, skipped=parsed.skipped)


# -- the file format -------------------------------------------------------------
class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _NumericFile(_FileModel):
    kind: Literal["numeric"]
    count: int = Field(ge=0)
    nulls: int = Field(ge=0)
    mean: float
    std: float = Field(ge=0)
    min: float
    max: float
    sample_size: int = Field(ge=0)
    sample: str  # base64 of little-endian float64, sorted
    temporal: Literal["datetime", "date"] | None = None


class _CategoricalFile(_FileModel):
    kind: Literal["categorical"]
    count: int = Field(ge=0)
    nulls: int = Field(ge=0)
    categories: list[str]
    counts: list[int]


class _ProfileFile(_FileModel):
    format: Literal["conveyor-reference-profile"]
    version: Literal[1]
    n_rows: int = Field(ge=0)
    columns: dict[str, Annotated[_NumericFile | _CategoricalFile, Field(discriminator="kind")]]
    skipped: dict[str, str] = Field(default_factory=dict)


def _column_to_file(p: ColumnProfile) -> _NumericFile | _CategoricalFile:
    if isinstance(p, NumericProfile):
        data = base64.b64encode(p.sample.astype("<f8").tobytes()).decode("ascii")
        return _NumericFile(
            kind="numeric", count=p.count, nulls=p.nulls, mean=p.mean, std=p.std, min=p.min, max=p.max,
            sample_size=len(p.sample), sample=data, temporal=p.temporal,
        )  # fmt: skip
    return _CategoricalFile(
        kind="categorical", count=p.count, nulls=p.nulls, categories=p.categories,
        counts=[int(c) for c in p.counts],
    )  # fmt: skip


def _column_from_file(c: _NumericFile | _CategoricalFile) -> ColumnProfile:
    if isinstance(c, _NumericFile):
        sample = np.frombuffer(base64.b64decode(c.sample, validate=True), dtype="<f8").astype(np.float64)
        if len(sample) != c.sample_size or (len(sample) > 1 and np.any(np.diff(sample) < 0)):
            raise ValueError("numeric sample has the wrong size or is not sorted")
        return NumericProfile(c.count, c.nulls, c.mean, c.std, c.min, c.max, sample, c.temporal)
    if len(c.categories) != len(c.counts):
        raise ValueError("categories and counts differ in length")
    return CategoricalProfile(c.count, c.nulls, list(c.categories), np.asarray(c.counts, dtype=np.int64))


# -- building ----------------------------------------------------------------------
def is_numeric(dtype: pl.DataType) -> bool:
    return dtype != pl.Boolean and (dtype.is_integer() or dtype.is_float() or dtype.is_decimal())


def is_categorical(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(dtype, pl.Enum)


def temporal_kind(dtype: pl.DataType) -> str | None:
    """``"datetime"`` or ``"date"`` for time columns (compared as epoch seconds), else None."""
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype == pl.Date:
        return "date"
    return None


def as_float(name: str, dtype: pl.DataType) -> pl.Expr:
    """A numeric or time column as float64 (time: seconds since the epoch)."""
    if temporal_kind(dtype) is not None:
        return pl.col(name).cast(pl.Datetime("us")).dt.epoch("us").cast(pl.Float64) / 1e6
    return pl.col(name).cast(pl.Float64)


def looks_like_identifier_name(name: str) -> bool:
    """Named like an identifier: ``id``, ``user_id``, ``itemId``, ``FlightNum``, ``zip_code``."""
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)
    return bool(words) and words[-1].lower() in ID_NAME_SUFFIXES


def identifier_reason(name: str, dtype: pl.DataType, distinct: int, count: int) -> str | None:
    """Why a column is identifier-like (its values are labels of entities, not measurements), or None.

    Integers: named like an identifier with more than MAX_CODE_VALUES distinct
    values, or at least ``ID_DISTINCT_SHARE`` of ``count`` values distinct (a key).
    Strings: more than MAX_PROFILE_CATEGORIES distinct values, or more than
    MAX_CODE_VALUES of them making up at least ``STRING_ID_DISTINCT_SHARE`` of
    the values. Booleans and floats are never identifiers.
    """
    if dtype == pl.Boolean or not (dtype.is_integer() or is_categorical(dtype)):
        return None
    what = "integers" if dtype.is_integer() else "values"
    shown = f"{distinct:,} distinct {what} in {count:,} rows"
    if dtype.is_integer():
        if distinct > MAX_CODE_VALUES and looks_like_identifier_name(name):
            return f"identifier-like (named like an id; {shown})"
        if count >= ID_MIN_ROWS and distinct >= ID_DISTINCT_SHARE * count:
            return f"identifier-like (a key: {shown})"
        return None
    if distinct > MAX_PROFILE_CATEGORIES:
        return f"identifier-like or free text ({shown})"
    if distinct > MAX_CODE_VALUES and count >= ID_MIN_ROWS and distinct >= STRING_ID_DISTINCT_SHARE * count:
        return f"identifier-like ({shown})"
    return None


def is_code(dtype: pl.DataType, distinct: int) -> bool:
    """An integer column with few distinct values: a code (label, rating, weekday) compared as categories."""
    return dtype.is_integer() and distinct <= MAX_CODE_VALUES


def subsample(frame: pl.DataFrame, columns: list[str], size: int | None = SORT_SUBSAMPLE) -> pl.DataFrame:
    """``columns`` of ``frame``, at most ``size`` random rows of them (seeded; all when shorter or None)."""
    part = frame.select(columns)
    if size is None or part.height <= size:
        return part
    rows = np.random.default_rng(SUBSAMPLE_SEED).choice(part.height, size, replace=False)
    return part[np.sort(rows)]


def finite_sorted(frame: pl.DataFrame, columns: list[str]) -> dict[str, FloatArray]:
    """Each column's finite values as sorted float64, sorted by Polars in parallel."""
    queries = []
    for c in columns:
        x = as_float(c, frame.schema[c])
        queries.append(frame.lazy().select(x.filter(x.is_finite()).sort().alias(c)))
    frames = pl.collect_all(queries)
    return {c: f.get_column(c).to_numpy() for c, f in zip(columns, frames, strict=True)}


def finite_moments(
    frame: pl.DataFrame, columns: list[str]
) -> dict[str, tuple[int, float, float, float, float]]:
    """Each column's (count, mean, population std, min, max) over its finite values, in one pass."""
    if not columns:
        return {}
    exprs = []
    for i, c in enumerate(columns):
        x = as_float(c, frame.schema[c])
        x = x.filter(x.is_finite())
        exprs += [
            x.count().alias(f"n{i}"), x.mean().alias(f"mean{i}"), x.std(ddof=0).alias(f"std{i}"),
            x.min().alias(f"min{i}"), x.max().alias(f"max{i}"),
        ]  # fmt: skip
    row = frame.select(exprs).row(0, named=True)
    return {
        c: (int(row[f"n{i}"]), row[f"mean{i}"] or 0.0, row[f"std{i}"] or 0.0, row[f"min{i}"] or 0.0,
            row[f"max{i}"] or 0.0)
        for i, c in enumerate(columns)
    }  # fmt: skip


def infinite_counts(frame: pl.DataFrame, columns: list[str]) -> dict[str, int]:
    """Each float column's number of ±inf values (other columns: 0), in one pass."""
    floats = [c for c in columns if frame.schema[c].is_float()]
    counts = dict.fromkeys(columns, 0)
    if floats:
        row = frame.select(pl.col(c).is_infinite().sum().alias(c) for c in floats).row(0, named=True)
        counts.update({c: int(row[c] or 0) for c in floats})
    return counts


def category_counts(frame: pl.DataFrame, columns: list[str]) -> dict[str, tuple[list[str], IntArray, int]]:
    """Each column's (values, counts, nulls), most frequent first, ties by value."""
    queries = [
        frame.lazy().select(pl.col(c).cast(pl.String).alias("value")).group_by("value").len() for c in columns
    ]
    result = {}
    for c, f in zip(columns, pl.collect_all(queries), strict=True):
        null_rows = f.filter(pl.col("value").is_null())
        nulls = int(null_rows.get_column("len").sum()) if null_rows.height else 0
        seen = f.filter(pl.col("value").is_not_null()).sort(["len", "value"], descending=[True, False])
        values = seen.get_column("value").to_list()
        counts = seen.get_column("len").to_numpy().astype(np.int64)
        result[c] = (values, counts, nulls)
    return result


def order_statistics(sorted_values: FloatArray, k: int) -> FloatArray:
    """``k`` evenly spaced order statistics (levels (i + ½)/k) of a sorted array; all when shorter."""
    n = len(sorted_values)
    if n <= k:
        return sorted_values.copy()
    idx = ((2 * np.arange(k, dtype=np.int64) + 1) * n) // (2 * k)
    return sorted_values[idx]


def _distinct_counts(df: pl.DataFrame, columns: list[str]) -> dict[str, tuple[int, int]]:
    """Each column's (distinct non-null values, non-null values), in one pass."""
    if not columns:
        return {}
    exprs = []
    for i, c in enumerate(columns):
        x = pl.col(c).drop_nulls()
        exprs += [x.n_unique().alias(f"d{i}"), x.count().alias(f"n{i}")]
    row = df.select(exprs).row(0, named=True)
    return {c: (int(row[f"d{i}"]), int(row[f"n{i}"])) for i, c in enumerate(columns)}


def labelled_columns(names: list[str], schema: pl.Schema) -> list[str]:
    """The columns whose distinct count decides their kind (integers and categorical types)."""
    return [c for c in names if schema[c].is_integer() or is_categorical(schema[c])]


def classify_columns(
    names: list[str], schema: pl.Schema, distinct: dict[str, tuple[int, int]]
) -> tuple[list[str], list[str], dict[str, str]]:
    """Numeric and categorical columns, and skipped ones with the reason, from types and distinct counts.

    ``distinct``: (distinct non-null values, non-null values) of the :func:`labelled_columns`.
    """
    skipped: dict[str, str] = {}
    for c, (n_distinct, n_values) in distinct.items():
        reason = identifier_reason(c, schema[c], n_distinct, n_values)
        if reason is not None:
            skipped[c] = reason
    codes = [c for c in names if c not in skipped and c in distinct and is_code(schema[c], distinct[c][0])]
    numeric = [
        c
        for c in names
        if c not in skipped
        and c not in codes
        and (is_numeric(schema[c]) or temporal_kind(schema[c]) is not None)
    ]
    categorical = [c for c in names if c not in skipped and (is_categorical(schema[c]) or c in codes)]
    for c in names:
        if c not in numeric and c not in categorical and c not in skipped:
            skipped[c] = f"type {schema[c]} is neither numeric, temporal nor categorical"
    return numeric, categorical, skipped


def build_profile(
    df: pl.DataFrame, columns: list[str] | None = None, *, sample_size: int | None = DEFAULT_SAMPLE_SIZE
) -> ReferenceProfile:
    """The reference profile of ``df`` (every column, or ``columns``).

    ``sample_size=None``: every finite value is kept (exact comparisons, a large
    profile); otherwise at most ``sample_size`` order statistics of at most
    SORT_SUBSAMPLE random rows.
    """
    names = list(df.columns) if columns is None else list(columns)
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise InputError(f"cannot profile: column(s) {', '.join(map(repr, missing))} not in the data")
    schema = df.schema
    distinct = _distinct_counts(df, labelled_columns(names, schema))
    numeric, categorical, skipped = classify_columns(names, schema, distinct)
    profiles: dict[str, ColumnProfile] = {}
    moments = finite_moments(df, numeric)
    values = finite_sorted(subsample(df, numeric, None if sample_size is None else SORT_SUBSAMPLE), numeric)
    for c in numeric:
        count, mean, std, lo, hi = moments[c]
        if count == 0 or len(values[c]) == 0:
            skipped[c] = "no finite values"
            continue
        kept = values[c] if sample_size is None else order_statistics(values[c], sample_size)
        profiles[c] = NumericProfile(
            count=count, nulls=df.height - count, mean=mean, std=std, min=lo, max=hi,
            sample=kept, temporal=temporal_kind(schema[c]),
        )  # fmt: skip
    for c, (cats, counts, nulls) in category_counts(df, categorical).items():
        if not cats:
            skipped[c] = "no non-null values"
            continue
        profiles[c] = CategoricalProfile(count=int(counts.sum()), nulls=nulls, categories=cats, counts=counts)
    ordered = {c: profiles[c] for c in names if c in profiles}
    return ReferenceProfile(
        n_rows=df.height, columns=ordered, skipped={c: skipped[c] for c in names if c in skipped}
    )


def reference_profile(df: pl.DataFrame, columns: list[str] | None = None, *, source: str) -> ReferenceProfile:
    """The profile a stand-alone drift check compares against: exact up to EXACT_MAX_ROWS rows.

    Every finite value is kept when the table has at most EXACT_MAX_ROWS rows
    (the tests then use every row), a sketch above. Infinite values are
    malformed input: InputError naming ``source`` and the column.
    """
    names = list(df.columns) if columns is None else columns
    infinite = {c: n for c, n in infinite_counts(df, [c for c in names if c in df.columns]).items() if n}
    if infinite:
        name, n = next(iter(infinite.items()))
        raise InputError(
            f"{source}: column {name!r}: {n:,} infinite value(s) (±inf) in the reference data", path=source
        )
    exact = df.height <= EXACT_MAX_ROWS
    return build_profile(df, columns, sample_size=None if exact else DEFAULT_SAMPLE_SIZE)


__all__ = [
    "CategoricalProfile",
    "ColumnProfile",
    "NumericProfile",
    "ReferenceProfile",
    "build_profile",
    "identifier_reason",
    "reference_profile",
    "temporal_kind",
]
