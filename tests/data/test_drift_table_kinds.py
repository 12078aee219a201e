"""Drift on everything a real table has: null rates, datetimes, identifiers, codes, labels, exact mode."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from conveyor.config import DriftMethod, DriftSection
from conveyor.data import build_profile, detect_drift, reference_profile

DEFAULTS = DriftSection()


def _with_nulls(rng: np.random.Generator, n: int, rate: float) -> pl.DataFrame:
    x = pl.Series("x", rng.normal(0, 1, n))
    nulls = np.zeros(n, dtype=bool)
    nulls[rng.choice(n, round(rate * n), replace=False)] = True
    return pl.DataFrame({"x": x.set(pl.Series(nulls), None)})  # type: ignore[arg-type]


def test_null_rate_going_from_1_9_to_5_1_percent_on_10k_rows_is_reported():
    rng = np.random.default_rng(3)
    ref = reference_profile(_with_nulls(rng, 10_000, 0.019), source="ref")
    col = detect_drift(ref, _with_nulls(rng, 10_000, 0.051), DEFAULTS).columns["x"]
    assert (col.null_rate_reference, col.null_rate_current) == (0.019, 0.051)
    # Cohen's h = 2·asin(√0.051) − 2·asin(√0.019) = 0.179 ≥ 0.1, and the two-proportion p-value is tiny
    assert col.null_rate_effect == pytest.approx(0.1790, abs=1e-4)
    assert col.null_rate_p_value < 1e-20
    assert col.null_rate_drift
    assert not col.distribution_drift  # the values themselves did not move
    assert col.drift
    same = detect_drift(ref, _with_nulls(rng, 10_000, 0.019), DEFAULTS).columns["x"]
    assert not same.null_rate_drift
    assert same.null_rate_p_value == 1.0  # exactly the same rate
    # the p-value method adjusts the null-rate p-values as their own family
    pvalue = DriftSection(method=DriftMethod.PVALUE)
    assert detect_drift(ref, _with_nulls(rng, 10_000, 0.051), pvalue).columns["x"].null_rate_drift


def _times(start: datetime, n: int, step_minutes: float) -> list[datetime]:
    return [start + timedelta(minutes=step_minutes * i) for i in range(n)]


def test_datetimes_are_compared_as_timestamps_and_the_time_axis_is_named():
    start = datetime(2026, 1, 1)
    n = 3_000
    rng = np.random.default_rng(0)
    signup = [start + timedelta(days=float(d)) for d in rng.uniform(0, 365, n)]
    later = [start + timedelta(days=float(d)) for d in rng.uniform(120, 485, n)]  # overlaps, moved
    same = [start + timedelta(days=float(d)) for d in rng.uniform(0, 365, n)]
    ref = reference_profile(pl.DataFrame({"signup": signup, "ts": _times(start, n, 1)}), source="ref")
    moved = detect_drift(ref, pl.DataFrame({"signup": later, "ts": _times(start, n, 1)}), DEFAULTS)
    assert moved.columns["signup"].type == "datetime"
    assert moved.columns["signup"].drift
    assert moved.columns["signup"].statistic == pytest.approx(120 / (365 / np.sqrt(12)), rel=0.1)
    assert not moved.columns["ts"].drift
    # the current data entirely after the reference period: the table's time axis, not a drift
    after = detect_drift(
        ref, pl.DataFrame({"signup": same, "ts": _times(start + timedelta(days=30), n, 1)}), DEFAULTS
    )
    assert after.skipped["ts"].startswith("time axis: the current data starts (2026-01-31T00:00:00+00:00)")
    assert not after.columns["signup"].drift
    # dates too
    dates = pl.DataFrame({"d": [t.date() for t in signup]})
    assert detect_drift(build_profile(dates), dates, DEFAULTS).columns["d"].type == "date"


def test_identifiers_are_excluded_with_the_reason_and_codes_are_categories():
    rng = np.random.default_rng(5)
    n = 5_000

    def table(seed: int, label_share: float) -> pl.DataFrame:
        r = np.random.default_rng(seed)
        return pl.DataFrame(
            {
                "FlightNum": r.integers(1, 8_000, n),  # an identifier by name
                "seq": r.permutation(n) + seed * n,  # an unnamed key
                "session": [f"s{seed}-{i}" for i in range(n)],  # distinct strings
                "rating": r.integers(1, 6, n),  # a code with 5 values
                "label": (r.random(n) < label_share).astype(np.int64),  # a classifier's label
                "age": r.integers(18, 90, n),  # 72 values: a number
            }
        )

    ref = reference_profile(table(1, 0.1), source="ref")
    report = detect_drift(ref, table(2, 0.3), DEFAULTS)
    assert report.skipped["FlightNum"].startswith("identifier-like (named like an id; ")
    assert report.skipped["seq"].startswith("identifier-like (a key: 5,000 distinct integers in 5,000 rows)")
    assert report.skipped["session"] == "identifier-like or free text (5,000 distinct values in 5,000 rows)"
    types = {name: col.type for name, col in report.columns.items()}
    assert types == {"rating": "categorical", "label": "categorical", "age": "numeric"}
    assert report.drifted_columns == ["label"]  # 10 % → 30 % positives
    assert report.columns["label"].test == "jensen_shannon"
    del rng


def test_columns_on_one_side_only_are_reported():
    ref = reference_profile(pl.DataFrame({"a": [1.0, 2.0, 3.0] * 10, "gone": ["x", "y"] * 15}), source="r")
    report = detect_drift(ref, pl.DataFrame({"a": [1.0, 2.0, 3.0] * 10, "new": [1] * 30}), DEFAULTS)
    assert report.only_in_reference == ["gone"]
    assert report.only_in_current == ["new"]
    assert list(report.columns) == ["a"]


def test_exact_mode_uses_every_row_and_matches_scipy():
    rng = np.random.default_rng(9)
    ref_df = pl.DataFrame({"x": rng.normal(0, 1, 30_000)})
    cur_df = pl.DataFrame({"x": rng.normal(0.05, 1, 40_000)})
    report = detect_drift(reference_profile(ref_df, source="ref"), cur_df, DEFAULTS)
    col = report.columns["x"]
    assert report.mode == col.mode == "exact"
    assert report.rows_used == report.table_rows == {"reference": 30_000, "current": 40_000}
    a, b = ref_df["x"].to_numpy(), cur_df["x"].to_numpy()
    ks = stats.ks_2samp(a, b)
    assert col.ks_statistic == pytest.approx(ks.statistic, abs=1e-12)
    # effective size 17,143 > 10,000: the limiting Kolmogorov distribution, within ~1 % of scipy's kstwo
    assert col.ks_p_value == pytest.approx(ks.pvalue, rel=2e-2)
    assert col.wasserstein == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)

    # a stored profile is a sketch; a current table over the limit is sampled — and both are stated
    sketch = detect_drift(build_profile(ref_df), cur_df, DEFAULTS, exact_max_rows=10_000)
    assert sketch.mode == sketch.columns["x"].mode == "sampled"
    assert sketch.rows_used == {"reference": 10_000, "current": 40_000}
    assert sketch.table_rows == {"reference": 30_000, "current": 40_000}
    assert sketch.columns["x"].wasserstein == pytest.approx(col.wasserstein, abs=0.01)


def test_exact_and_sampled_modes_are_stated_on_the_command_line(cli, tmp_path):
    rng = np.random.default_rng(1)
    pl.DataFrame({"x": rng.normal(size=20_000)}).write_parquet(tmp_path / "ref.parquet")
    pl.DataFrame({"x": rng.normal(size=20_000)}).write_parquet(tmp_path / "cur.parquet")
    exact = cli("drift", tmp_path / "ref.parquet", tmp_path / "cur.parquet")
    assert exact.exit_code == 0, exact.stderr
    assert "mode: exact (every row: 20,000 reference, 20,000 current)" in exact.stdout
    cli("drift", tmp_path / "ref.parquet", tmp_path / "cur.parquet", "--save-profile", tmp_path / "p.json")
    sampled = cli("drift", tmp_path / "p.json", tmp_path / "cur.parquet", "--json")
    payload = sampled.json()
    assert payload["mode"] == "sampled"
    assert payload["rows_used"] == {"reference": 10_000, "current": 20_000}
