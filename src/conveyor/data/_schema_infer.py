"""Inferring a :class:`Schema` from a reference table, so that fresh clean data passes it.

A rule inferred from N rows must not fail the next N rows drawn from the same
distributions (docs/statistics.md measures it: under 1 % of clean batches fail,
by N and distribution) and must still catch what is really wrong. How:

- **Ranges from the tails, not the extremes.** The largest value of a sample
  is no bound: the next batch of the same size exceeds it half the time. The
  bound is the extreme plus ``TAIL_MARGIN`` (8) times the tail's scale,
  measured as the mean excess of the ``k = min(50, N/10)`` most extreme
  values over the next one. For an exponential-type tail of scale *a* the
  mean excess estimates *a*, and the maximum of a fresh batch passes the
  sample's maximum + c·*a* with probability about 1/(1 + eᶜ): 0.03 % for
  c = 8, which leaves room for the estimate's own noise (±14 % at k = 50)
  and for tables of many columns. Upper tails of non-negative columns are
  measured on log(1 + x), where long tails (lognormal amounts, counts) look
  exponential (given N ≥ 100): their margins are multiplicative and wide. Bounded columns
  (ties at the top, a rating of 5) get no margin. Physical bounds are kept:
  a column with no negative value gets ``min: 0`` (amounts, counts,
  durations) and a column within [0, 1] (a share) keeps ``max ≤ 1``. The
  cost is measured: a column non-negative in the sample by chance (a normal
  of mean 5σ) fails about 0.3 % of fresh 20,000-row batches. Bounds are rounded outwards to two
  significant digits of the margin (``-11.3``, never
  ``-11.200000000000001``); integer columns get integers. Infinite values
  in the sample drop the bound on their side.
- **Null rates with a binomial margin**: the observed rate plus four standard
  errors of the difference of two rates on N rows, ``4·√(2p(1−p)/N)``, plus
  1/N; NaN counts as a null.
- **Categories with a tolerance for rare levels.** Levels seen once
  (``n₁`` of them) say how much probability sits on levels not seen at all
  (the Good–Turing estimate n₁/N). The rule gets a ``mostly`` share — values outside the list may make up
  (n₁ + 4√n₁ + 10)/N of the rows: four standard deviations above the
  Good–Turing estimate, plus ten rows for a level too rare to be seen at all
  (one of probability λ/N is missed with probability e^−λ and then fills
  more than ten of the next N rows with a probability that peaks near 10⁻⁴).
  A rare level's first appearance is not a failure; a new category in a few
  percent of the rows still is (from N ≈ 1,000; at N = 200 the tolerance is
  about 10 %). A strict list cannot hold the 1 % promise: levels of
  probability about 0.7/N are all missed by the sample, and one of them then
  shows up in the next batch, a quarter of the time, whatever N.
- **Keys and identifiers.** An integer or string column whose values are all
  distinct (at least ``UNIQUE_MIN_ROWS`` of them) gets ``unique: true``.
  Identifier-like columns (:func:`conveyor.data._profile.identifier_reason`:
  named like an id, or a key, or mostly distinct strings) are marked
  ``identifier: true``; they get no range (ids grow: only ``min: 0``) and no
  category list, and drift checks leave them out.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from conveyor.data._profile import identifier_reason, looks_like_identifier_name
from conveyor.data._schema import ColumnRule, ColumnType, Freshness, RowBounds, Schema, column_type
from conveyor.errors import UsageError

MAX_CATEGORIES = 50  # string columns with at most this many values get an allowed-values rule
TAIL_POINTS = 50  # a tail's scale: the mean excess of its k = min(50, N/10) most extreme values
TAIL_MARGIN = 8.0  # bounds lie this many tail scales beyond the sample's extremes
LOG_TAIL_MIN_POINTS = 10  # fewer tail points (N < 100): too few to extrapolate on the log scale
NULL_RATE_Z = 4.0  # max null rate: observed + 4 standard errors of a difference of two rates
CATEGORY_Z = 4.0  # category tolerance: (n1 + 4·√n1 + 10) / N, n1 = levels seen once
CATEGORY_UNSEEN_ROWS = 10  # + 10 rows: a level too rare to be seen in N rows seldom fills 10 of the next N
UNIQUE_MIN_ROWS = 20  # all-distinct columns shorter than this get no uniqueness rule
ROWS_MIN_FACTOR = 0.5  # inferred row bounds: half to ten times the reference's row count
ROWS_MAX_FACTOR = 10.0
FRESHNESS_SLACK_HOURS = 7 * 24.0  # inferred freshness: the reference's age plus one week


def _round_out(value: float, margin: float, *, down: bool) -> float:
    """``value`` rounded away from the data at two significant digits of ``margin`` (no float noise)."""
    if margin <= 0 or not math.isfinite(value):
        return value
    digits = 1 - math.floor(math.log10(margin))  # step 10**-digits
    scaled = value * 10**digits
    # a product like 11.2 * 10 = 111.99999999999999 must not floor to 111
    scaled = round(scaled) if abs(scaled - round(scaled)) < 1e-9 else scaled
    stepped = math.floor(scaled) if down else math.ceil(scaled)
    return round(stepped / 10**digits, max(digits, 0)) if digits > 0 else float(stepped * 10 ** (-digits))


def _mean_excess(tail: np.ndarray, threshold: float) -> float:
    """The mean excess of the ``tail`` values over ``threshold``: an exponential tail's scale."""
    return float(np.mean(np.abs(tail - threshold))) if len(tail) else 0.0


def tail_bounds(values: np.ndarray) -> tuple[float, float]:
    """Lower and upper bounds for a column's sorted finite ``values`` (see the module docstring)."""
    n = len(values)
    lo, hi = float(values[0]), float(values[-1])
    if n < 2:
        pad = abs(lo) * 0.1
        return _round_out(lo - pad, pad, down=True), _round_out(hi + pad, pad, down=False)
    k = max(1, min(TAIL_POINTS, n // 10, n - 1))
    lo_margin = TAIL_MARGIN * _mean_excess(values[:k], float(values[k]))
    new_lo = _round_out(lo - lo_margin, lo_margin, down=True)
    if lo >= 0 and k >= LOG_TAIL_MIN_POINTS:
        # a non-negative column: its upper tail is measured on log(1 + x), where long tails
        # (lognormal amounts, counts) look exponential — given enough tail points to measure it
        logs = np.log1p(values[-k - 1 :])
        top = float(np.expm1(logs[-1] + TAIL_MARGIN * _mean_excess(logs[1:], float(logs[0]))))
        new_hi = _round_out(top, top - hi, down=False) if top > hi else hi  # no margin: the maximum itself
    else:
        hi_margin = TAIL_MARGIN * _mean_excess(values[-k:], float(values[-k - 1]))
        new_hi = _round_out(hi + hi_margin, hi_margin, down=False)
    if lo >= 0:
        new_lo = max(new_lo, 0.0)  # a non-negative column stays non-negative (a physical bound)
    if lo >= 0 and hi <= 1 < new_hi:  # a share stays a share
        new_hi = 1.0
    return new_lo, new_hi


def _max_null_rate(rate: float, n: int) -> float:
    slack = NULL_RATE_Z * math.sqrt(2 * rate * (1 - rate) / n) + 1 / n
    return min(1.0, math.ceil((rate + slack) * 1000) / 1000)


def _category_mostly(counts: list[int], n_values: int) -> float:
    singletons = sum(1 for c in counts if c == 1)
    tolerance = (singletons + CATEGORY_Z * math.sqrt(singletons) + CATEGORY_UNSEEN_ROWS) / n_values
    return max(0.5, math.floor((1 - tolerance) * 10_000) / 10_000)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _numeric_rule(rule: dict[str, Any], series: pl.Series, kind: ColumnType, identifier: bool) -> None:
    x = series.cast(pl.Float64).drop_nulls()
    finite = x.filter(x.is_finite()).sort().to_numpy()
    if len(finite) == 0:
        return
    if identifier:  # identifiers grow (new users, items, sessions): only their sign is a rule
        if finite[0] >= 0:
            rule["min"] = 0
        return
    lo, hi = tail_bounds(finite)
    has_neg_inf = bool((x == -math.inf).any())
    has_pos_inf = bool((x == math.inf).any())
    if kind is ColumnType.INTEGER:
        lo, hi = float(math.floor(lo)), float(math.ceil(hi))
    cast = int if kind is ColumnType.INTEGER else float
    if not has_neg_inf:
        rule["min"] = cast(lo)
    if not has_pos_inf:
        rule["max"] = cast(hi)


def _column_rule(df: pl.DataFrame, name: str, kind: ColumnType) -> ColumnRule:
    series = df.get_column(name)
    n = df.height
    nulls = series.null_count() + (int(series.is_nan().sum()) if series.dtype.is_float() else 0)
    rule: dict[str, Any] = {"type": kind, "nullable": nulls > 0}
    if nulls:
        rate = nulls / n
        rule["observed_null_rate"] = round(rate, 6)
        rule["max_null_rate"] = _max_null_rate(rate, n)
    values = series.drop_nulls()
    distinct = values.n_unique() if kind in (ColumnType.INTEGER, ColumnType.STRING) else 0
    reason = identifier_reason(name, series.dtype, distinct, len(values)) if distinct else None
    identifier = reason is not None or (kind is ColumnType.INTEGER and looks_like_identifier_name(name))
    if identifier:
        rule["identifier"] = True
    if kind in (ColumnType.INTEGER, ColumnType.FLOAT):
        _numeric_rule(rule, series, kind, identifier)
    if kind in (ColumnType.INTEGER, ColumnType.STRING) and len(values) >= UNIQUE_MIN_ROWS:
        rule["unique"] = distinct == len(values)
    if (
        kind is ColumnType.STRING
        and not identifier
        and 0 < distinct <= MAX_CATEGORIES
        and distinct <= max(1, n // 2)
    ):
        counts = values.cast(pl.String).value_counts(sort=True, name="n")
        rule["categories"] = sorted(counts.get_column(name).to_list())
        rule["mostly"] = _category_mostly(counts.get_column("n").to_list(), len(values))
    return ColumnRule.model_validate(rule)


def infer_schema(df: pl.DataFrame, *, key: list[str] | None = None, timestamp: str | None = None) -> Schema:
    """Rules that ``df`` and fresh data like it satisfy: types, nulls, ranges, categories, keys."""
    for name in [*(key or []), *([timestamp] if timestamp else [])]:
        if name not in df.columns:
            raise UsageError(f"column {name!r} is not in the table (columns: {', '.join(df.columns)})")
    types = {c: column_type(df.schema[c]) for c in df.columns}
    columns = {c: _column_rule(df, c, types[c]) for c in df.columns}
    if key and len(key) == 1 and df.get_column(key[0]).is_unique().all():
        columns[key[0]] = columns[key[0]].model_copy(update={"unique": True})
    n = df.height
    return Schema(
        columns=columns,
        key=key or None,
        rows=RowBounds(min=max(1, math.floor(n * ROWS_MIN_FACTOR)), max=math.ceil(n * ROWS_MAX_FACTOR)),
        freshness=_infer_freshness(df, types, timestamp),
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


__all__ = ["infer_schema", "tail_bounds"]
