"""Drift statistics with known answers: scipy's p-values, calibrated false alarms, power on shifts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from conveyor.config import DriftMethod, DriftSection
from conveyor.data import ReferenceProfile, build_profile, detect_drift
from conveyor.data._drift_stats import merge_sparse, wasserstein_sorted
from conveyor.data._profile import NumericProfile

DEFAULTS = DriftSection()
PVALUE = DriftSection(method=DriftMethod.PVALUE)


def _categorical(rng: np.random.Generator, n: int, k: int, tilt: float = 0.0) -> np.ndarray:
    p = np.linspace(1.0, 1.0 + tilt, k)
    return np.array([f"c{i:02d}" for i in range(k)])[rng.choice(k, n, p=p / p.sum())]


def frame(rng: np.random.Generator, n: int, shift: float = 0.0, tilt: float = 0.0) -> pl.DataFrame:
    """10 numeric columns (normal, exponential, rounded) and 10 categorical ones with 10–50 categories."""
    cols: dict[str, np.ndarray] = {}
    for i in range(10):
        base = rng.normal(size=n) if i % 3 == 0 else rng.exponential(size=n)
        if i % 3 == 2:
            base = np.round(base, 1)  # ties, as in real data
        cols[f"num{i}"] = base + shift  # σ = 1 for both families
    for i, k in enumerate([10, 15, 20, 25, 30, 35, 40, 45, 50, 50]):
        cols[f"cat{i}"] = _categorical(rng, n, k, tilt)
    return pl.DataFrame(cols)


# -- equal to scipy ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n_ref", "n_cur"), [(800, 1200), (5_000, 9_000), (30_000, 50_000), (2_000, 150_000)]
)
def test_ks_and_wasserstein_equal_scipy(n_ref, n_cur):
    rng = np.random.default_rng(n_ref + n_cur)
    ref = pl.DataFrame({"x": np.round(rng.normal(size=n_ref), 2)})
    cur = pl.DataFrame({"x": np.round(rng.normal(0.03, 1.1, size=n_cur), 2)})
    profile = build_profile(ref)
    col = detect_drift(profile, cur, DEFAULTS).columns["x"]
    sample = profile.columns["x"]
    assert isinstance(sample, NumericProfile)
    if n_ref <= 10_000:  # the profile holds the whole column
        np.testing.assert_array_equal(sample.sample, np.sort(ref["x"].to_numpy()))
    expected = stats.ks_2samp(sample.sample, cur["x"].to_numpy())
    assert col.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert col.ks_p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    w = stats.wasserstein_distance(sample.sample, cur["x"].to_numpy())
    assert col.wasserstein == pytest.approx(w, rel=1e-9)
    assert col.statistic == pytest.approx(w / ref["x"].std(ddof=0), rel=1e-9)


def test_wasserstein_sorted_matches_scipy_on_awkward_sizes():
    rng = np.random.default_rng(7)
    for n, m in [(1, 1), (1, 7), (3, 3), (7, 13), (13, 7), (100, 1000), (999, 1001)]:
        a, b = np.sort(rng.normal(size=n)), np.sort(rng.exponential(size=m))
        assert wasserstein_sorted(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)


def test_chi_square_is_scipys_contingency_test():
    rng = np.random.default_rng(3)
    ref = pl.DataFrame({"c": _categorical(rng, 20_000, 8)})
    cur = pl.DataFrame({"c": _categorical(rng, 5_000, 8, tilt=0.2)})
    col = detect_drift(build_profile(ref), cur, DEFAULTS).columns["c"]
    table = np.array(
        [
            [(ref["c"] == f"c{i:02d}").sum() for i in range(8)],
            [(cur["c"] == f"c{i:02d}").sum() for i in range(8)],
        ]
    )
    expected = stats.chi2_contingency(table)
    assert col.chi2 == pytest.approx(expected.statistic, rel=1e-12)
    assert col.chi2_p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert col.p_value == col.chi2_p_value
    assert col.chi2_pooled_categories == 0
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    from scipy.spatial.distance import jensenshannon

    assert col.statistic == pytest.approx(jensenshannon(p, q), rel=1e-12)


def test_sparse_categories_are_pooled_before_the_test():
    table = np.array([[500, 300, 6, 4, 1], [400, 350, 3, 2, 0]])
    merged, n_pooled = merge_sparse(table)
    assert n_pooled == 3
    np.testing.assert_array_equal(merged, [[500, 300, 11], [400, 350, 5]])
    tiny = np.array([[500, 300, 1], [400, 350, 0]])  # the pooled bin alone is too small: joins the smallest
    merged, n_pooled = merge_sparse(tiny)
    np.testing.assert_array_equal(merged, [[500, 301], [400, 350]])
    assert n_pooled == 2


def test_unseen_categories_count_and_drift():
    rng = np.random.default_rng(5)
    ref = pl.DataFrame({"c": _categorical(rng, 5_000, 10)})
    new = np.where(rng.random(5_000) < 0.3, "brand-new", _categorical(rng, 5_000, 10))
    col = detect_drift(build_profile(ref), pl.DataFrame({"c": new}), DEFAULTS).columns["c"]
    assert col.unseen_categories == ["brand-new"]
    assert col.unseen_share == pytest.approx(0.3, abs=0.03)
    assert col.drift
    assert col.psi > 1.0


# -- the report ------------------------------------------------------------------------------
def test_report_shape_verdict_and_skips():
    rng = np.random.default_rng(11)
    ref = frame(rng, 2_000).with_columns(
        pl.Series("ident", [f"id{i}" for i in range(2_000)]), pl.lit(1.5).alias("gone")
    )
    cur = frame(rng, 2_000, shift=1.0, tilt=2.0).with_columns(pl.Series("ident", ["x"] * 2_000))
    report = detect_drift(build_profile(ref), cur.with_columns(pl.col("num1").cast(pl.String)), DEFAULTS)
    payload = report.to_dict()
    assert set(payload) == {
        "dataset_drift", "drift_share", "columns", "mode", "table_rows", "rows_used",
        "only_in_reference", "only_in_current", "problems",
    }  # fmt: skip
    assert payload["only_in_reference"] == ["gone"]
    for col in payload["columns"].values():
        assert {"type", "test", "statistic", "p_value", "threshold", "drift", "psi"} <= set(col)
        assert col["test"] in ("wasserstein", "jensen_shannon")
    assert report.problems["num1"].startswith("type changed: numeric in the reference, String")
    assert "identifier" in report.skipped["ident"]
    assert report.skipped["gone"] == "missing from the current data"
    assert report.dataset_drift
    assert report.drift_share == 1.0
    assert sorted(report.drifted_columns) == sorted(payload["columns"])


def test_profile_round_trip_is_byte_identical_and_small(tmp_path):
    rng = np.random.default_rng(2)
    n = 250_000  # more rows than the sort subsample: the seeded subsample must be deterministic too
    df = pl.DataFrame({"a": rng.normal(size=n), "b": rng.exponential(size=n), "c": _categorical(rng, n, 30)})
    profile = build_profile(df)
    profile.save(tmp_path / "a.json")
    ReferenceProfile.load(tmp_path / "a.json").save(tmp_path / "b.json")
    build_profile(df).save(tmp_path / "c.json")
    a = (tmp_path / "a.json").read_bytes()
    assert a == (tmp_path / "b.json").read_bytes() == (tmp_path / "c.json").read_bytes()
    assert len(a) < 250_000  # 2 numeric samples of 10,000 values: ~215 kB, whatever the row count
    cur = pl.DataFrame(
        {"a": rng.normal(0.3, 1, 3_000), "b": rng.exponential(size=3_000), "c": _categorical(rng, 3_000, 30)}
    )
    before = detect_drift(profile, cur, DEFAULTS).to_dict()
    after = detect_drift(ReferenceProfile.load(tmp_path / "a.json"), cur, DEFAULTS).to_dict()
    assert before == after


def test_pvalue_method_uses_benjamini_hochberg():
    rng = np.random.default_rng(4)
    ref, cur = frame(rng, 3_000), frame(rng, 3_000)
    cur = cur.with_columns(pl.col("num0") + 0.4)
    report = detect_drift(build_profile(ref), cur, PVALUE)
    cols = report.columns
    raw = [c.p_value for c in cols.values()]
    adjusted = stats.false_discovery_control(raw)
    for col, adj in zip(cols.values(), adjusted, strict=True):
        assert col.p_value_adjusted == pytest.approx(adj)
        assert col.threshold == PVALUE.alpha
        assert col.test in ("ks", "chi2")
    assert report.drifted_columns == ["num0"]


# -- calibration: false alarms at the configured rate, shifts found ----------------------------
def _flag_rates(n: int, seeds: int, settings: DriftSection, shift: float = 0.0, tilt: float = 0.0):
    numeric = categorical = any_flag = 0
    p_below_alpha = 0
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        report = detect_drift(build_profile(frame(rng, n)), frame(rng, n, shift, tilt), settings)
        flagged = report.drifted_columns
        numeric += sum(c.startswith("num") for c in flagged)
        categorical += sum(c.startswith("cat") for c in flagged)
        any_flag += bool(flagged)
        p_below_alpha += sum(c.p_value < settings.alpha for c in report.columns.values())
    tests = seeds * 10
    return numeric / tests, categorical / tests, any_flag / seeds, p_below_alpha / (2 * tests)


@pytest.mark.parametrize(("n", "seeds"), [(1_000, 50), (100_000, 5)])
def test_unshifted_columns_are_not_flagged(n, seeds):
    alpha = DEFAULTS.alpha
    num, cat, _, raw = _flag_rates(n, seeds, DEFAULTS)
    # distance mode flags a column only when its test also rejects at alpha: at most alpha by construction
    assert num <= alpha
    assert cat <= alpha
    if n == 100_000:
        assert num == 0.0
        assert cat == 0.0
    # the tests under the distances are calibrated: raw p-values fall under alpha at about alpha
    tests = 2 * seeds * 10
    assert raw <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / tests)
    if n == 1_000:  # p-value mode with Benjamini–Hochberg: any false alarm in a run at most ~alpha
        _num_p, _cat_p, any_p, _ = _flag_rates(n, seeds, PVALUE)
        assert any_p <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / seeds)


@pytest.mark.parametrize(("n", "seeds"), [(1_000, 10), (100_000, 2)])
def test_shifted_columns_are_flagged(n, seeds):
    num, cat, any_flag, _ = _flag_rates(n, seeds, DEFAULTS, shift=0.5, tilt=3.0)
    assert num == 1.0
    assert cat == 1.0
    assert any_flag == 1.0
