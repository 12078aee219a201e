"""The reference profile on Spark (kll_sketch_agg_double, hll_sketch_agg) and on Polars agree.

Same Parquet file, both engines: the same columns profiled and skipped, the same exact numbers
(rows, nulls, means, σ, min, max, category counts), and sketched quantiles within the two KLL
sketches' rank errors of each other; a drift check gives the same verdict on either profile.
Spark's sketches are DataSketches' binary format, read by the `datasketches` package.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from spark_support import SPARK_TESTS

from conveyor.config import DriftSection
from conveyor.data import kll_rank_error, scan_dataset, spark_profile, stream_drift, stream_profile
from conveyor.errors import InputError

pytestmark = SPARK_TESTS


def _table(n: int, seed: int, shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    price = rng.exponential(20.0, n) + shift * 20
    price[rng.random(n) < 0.03] = np.nan
    return pl.DataFrame(
        {
            "user_id": rng.integers(0, n, n),
            "price": price,
            "score": rng.normal(shift, 1.0, n),
            "rating": rng.integers(1, 6, n),
            "event": rng.choice(["view", "cart", "buy", None], n, p=[0.7, 0.2, 0.05, 0.05]),
            "at": [datetime(2026, 10, 1) + timedelta(minutes=int(m)) for m in rng.integers(0, 40_000, n)],
        }
    )


def test_spark_and_polars_profiles_agree(spark, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    _table(30_000, 0).write_parquet(path)
    on_spark = spark_profile(spark, [str(path)])
    on_polars = stream_profile(scan_dataset(path))
    assert list(on_spark.columns) == list(on_polars.columns) == ["price", "score", "rating", "event", "at"]
    assert list(on_spark.skipped) == ["user_id"]
    assert on_spark.n_rows == on_polars.n_rows == 30_000
    tolerance = 2 * kll_rank_error() + 1e-4
    for name in ("price", "score", "at"):
        s, p = on_spark.columns[name], on_polars.columns[name]
        assert (s.count, s.nulls, s.min, s.max) == (p.count, p.nulls, p.min, p.max)  # type: ignore[union-attr]
        assert s.mean == pytest.approx(p.mean, rel=1e-9)  # type: ignore[union-attr]
        assert s.std == pytest.approx(p.std, rel=1e-9)  # type: ignore[union-attr]
        levels = (np.arange(len(s.sample)) + 0.5) / len(s.sample)  # type: ignore[union-attr]
        ranks = np.searchsorted(p.sample, s.sample, side="right") / len(p.sample)  # type: ignore[union-attr]
        assert np.max(np.abs(ranks - levels)) <= tolerance, name
    for name in ("rating", "event"):
        s, p = on_spark.columns[name], on_polars.columns[name]
        assert (s.categories, list(s.counts), s.nulls) == (p.categories, list(p.counts), p.nulls)  # type: ignore[union-attr]

    current = tmp_path / "current.parquet"
    _table(30_000, 1, shift=0.3).write_parquet(current)
    settings = DriftSection()
    by_spark = stream_drift(on_spark, scan_dataset(current), settings)
    by_polars = stream_drift(on_polars, scan_dataset(current), settings)
    assert by_spark.drifted_columns == by_polars.drifted_columns
    assert {"price", "score"} <= set(by_spark.drifted_columns)
    assert by_spark.dataset_drift == by_polars.dataset_drift


def test_a_path_spark_cannot_find_is_one_line(spark, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere\.parquet: Spark cannot read it: .*PATH_NOT_FOUND") as err:
        spark_profile(spark, [str(tmp_path / "nowhere.parquet")])
    assert "\n" not in str(err.value)


def test_profile_command_on_spark_writes_the_profile_drift_reads(spark, cli, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    _table(2_000, 0).write_parquet(path)
    made = cli("profile", path, "--out", tmp_path / "ref.json", "--spark", "--json")
    assert made.exit_code == 0, made.stderr
    assert made.json()["mode"] == "spark"
    assert made.json()["skipped"] == {"user_id": made.json()["skipped"]["user_id"]}
    same = cli("drift", tmp_path / "ref.json", path, "--stream", "--json")
    assert same.exit_code == 0, same.stdout
    assert same.json()["drift_share"] == 0.0
