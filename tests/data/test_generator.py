"""The shop world and the classification generator, checked against what they plant."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from conveyor.data import (
    ShopConfig,
    ShopDrift,
    ShopWorld,
    generate_classification,
    infer_schema,
    validate_table,
)
from conveyor.errors import UsageError

MONDAY = date(2026, 11, 2)
SMALL = ShopConfig(n_users=600, n_items=300, n_categories=12, seed=7)
COLUMNS = {
    "user_id": pl.Int64,
    "item_id": pl.Int64,
    "timestamp": pl.Datetime("us"),
    "event": pl.String,
    "price": pl.Float64,
    "category": pl.String,
    "session_id": pl.Int64,
}


@pytest.fixture(scope="module")
def world() -> ShopWorld:
    return ShopWorld.create(SMALL)


@pytest.fixture(scope="module")
def two_weeks(world: ShopWorld) -> pl.DataFrame:
    return world.simulate(MONDAY, 14)


def test_the_event_log_has_the_promised_columns(two_weeks: pl.DataFrame) -> None:
    assert dict(two_weeks.schema) == COLUMNS
    assert two_weeks.null_count().row(0) == (0,) * len(COLUMNS)
    assert set(two_weeks["event"].unique()) == {"view", "add_to_cart", "purchase"}
    assert two_weeks["timestamp"].is_sorted()
    assert two_weeks["timestamp"].min() >= datetime(2026, 11, 2)
    assert two_weeks["timestamp"].max() < datetime(2026, 11, 17)  # a session may run past midnight
    assert (two_weeks["price"] > 0).all()


def test_the_same_seed_gives_identical_frames_and_another_seed_does_not(world: ShopWorld) -> None:
    again = ShopWorld.create(SMALL)
    assert_frame_equal(again.products, world.products)
    assert_frame_equal(again.users, world.users)
    assert_frame_equal(again.simulate(MONDAY, 3), world.simulate(MONDAY, 3))
    other = ShopWorld.create(ShopConfig(n_users=600, n_items=300, n_categories=12, seed=8))
    assert not other.products.equals(world.products)
    assert not world.simulate(MONDAY, 3, seed=1).equals(world.simulate(MONDAY, 3))


def test_week_two_continues_week_one(world: ShopWorld, two_weeks: pl.DataFrame) -> None:
    weeks = pl.concat([world.simulate(MONDAY, 7), world.simulate(MONDAY + timedelta(days=7), 7)])
    assert_frame_equal(weeks.sort("timestamp", "session_id"), two_weeks.sort("timestamp", "session_id"))
    first, second = (set(w["user_id"].unique()) for w in (weeks.head(weeks.height // 2), weeks.tail(100)))
    assert first & second  # the same users come back


def test_each_session_runs_views_then_carts_then_purchases(two_weeks: pl.DataFrame) -> None:
    per_session = two_weeks.group_by("session_id").agg(
        views=(pl.col("event") == "view").sum(),
        carts=(pl.col("event") == "add_to_cart").sum(),
        buys=(pl.col("event") == "purchase").sum(),
        users=pl.col("user_id").n_unique(),
        first_event=pl.col("event").sort_by("timestamp").first(),
    )
    assert (per_session["buys"] <= per_session["carts"]).all()
    assert (per_session["carts"] <= per_session["views"]).all()
    assert (per_session["users"] == 1).all()
    assert (per_session["first_event"] == "view").all()
    # Every purchase was carted, and every cart was viewed, earlier in the same session.
    events = {e: two_weeks.filter(pl.col("event") == e) for e in ("view", "add_to_cart", "purchase")}
    for later, earlier in (("purchase", "add_to_cart"), ("add_to_cart", "view")):
        joined = events[later].join(events[earlier], on=["session_id", "item_id"], how="left", suffix="_e")
        ok = joined.group_by(pl.col("session_id"), pl.col("item_id"), pl.col("timestamp")).agg(
            (pl.col("timestamp_e") < pl.col("timestamp")).any()
        )
        assert ok["timestamp_e"].all()


def test_funnel_rates_are_those_of_a_shop(two_weeks: pl.DataFrame) -> None:
    counts = dict(two_weeks["event"].value_counts().iter_rows())
    assert 0.03 < counts["add_to_cart"] / counts["view"] < 0.15
    assert 0.2 < counts["purchase"] / counts["add_to_cart"] < 0.6


def test_popularity_has_a_long_tail(two_weeks: pl.DataFrame) -> None:
    views = two_weeks.filter(pl.col("event") == "view")["item_id"].value_counts(sort=True)
    top_tenth = views["count"].head(SMALL.n_items // 10).sum()
    assert top_tenth / views["count"].sum() > 0.4


def test_weekends_and_evenings_are_busier(two_weeks: pl.DataFrame) -> None:
    per_day = two_weeks.group_by(pl.col("timestamp").dt.weekday().alias("day")).len()
    by_day = dict(per_day.iter_rows())
    weekend = (by_day[6] + by_day[7]) / 2
    weekday = sum(by_day[d] for d in range(1, 5)) / 4
    assert weekend > 1.15 * weekday
    hours = dict(two_weeks.group_by(pl.col("timestamp").dt.hour().alias("h")).len().iter_rows())
    assert sum(hours.get(h, 0) for h in (19, 20, 21)) > 4 * sum(hours.get(h, 0) for h in (3, 4, 5))


def test_the_demo_size_week_is_tens_of_thousands_of_events() -> None:
    week = ShopWorld.create(ShopConfig()).simulate(days=7)
    assert 50_000 <= week.height <= 150_000


def test_a_new_category_appears_and_takes_a_share(world: ShopWorld) -> None:
    drifted = world.simulate(MONDAY, 7, drift=ShopDrift(new_category=True))
    new_name = world.category_names[-1]
    assert new_name not in set(world.products["category"])
    new_rows = drifted.filter(pl.col("category") == new_name)
    assert 0.1 < new_rows.height / drifted.height < 0.35
    assert new_rows["item_id"].min() >= SMALL.n_items
    catalogue = world.catalogue(ShopDrift(new_category=True))
    assert set(new_rows["item_id"]) <= set(catalogue["item_id"])


def test_a_price_shift_moves_the_price_distribution(world: ShopWorld) -> None:
    base = world.simulate(MONDAY, 3)
    shifted = world.simulate(MONDAY, 3, drift=ShopDrift(price_shift=1.3))
    ratio = shifted["price"].median() / base["price"].median()  # type: ignore[operator]
    assert ratio == pytest.approx(1.3, rel=0.02)
    ratios = world.catalogue(ShopDrift(price_shift=1.3))["price"] / world.products["price"]
    assert ratios.min() == pytest.approx(1.3, rel=0.01)
    assert ratios.max() == pytest.approx(1.3, rel=0.01)


def test_a_popularity_shift_reshuffles_which_items_are_popular(world: ShopWorld) -> None:
    def top_items(drift: ShopDrift | None, start: date) -> set[int]:
        views = world.simulate(start, 7, drift=drift).filter(pl.col("event") == "view")
        return set(views["item_id"].value_counts(sort=True)["item_id"].head(30))

    next_week = MONDAY + timedelta(days=7)
    stable = len(top_items(None, MONDAY) & top_items(None, next_week))
    shifted = len(top_items(None, MONDAY) & top_items(ShopDrift(popularity_shift=1.0), next_week))
    assert stable >= 20
    assert shifted <= stable - 8


def test_a_broken_feed_has_nulls_garbage_and_fails_its_schema(world: ShopWorld) -> None:
    clean = world.simulate(MONDAY, 2)
    broken = world.simulate(MONDAY, 2, drift=ShopDrift(broken_feed=True))
    assert broken["user_id"].null_count() > 0
    assert broken["item_id"].null_count() > 0
    assert broken["timestamp"].dtype == pl.String
    parsed = broken["timestamp"].str.to_datetime(strict=False)
    assert parsed.null_count() > 0  # garbage among the timestamps
    assert (broken["price"] < 0).sum() > 0
    schema = infer_schema(clean, timestamp="timestamp")
    assert validate_table(clean, schema, now=datetime(2026, 11, 4)).ok
    report = validate_table(broken, schema, now=datetime(2026, 11, 4))
    failed = {f.column for f in report.failures}
    assert {"user_id", "item_id", "timestamp", "price"} <= failed


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ShopConfig(n_users=0), "n_users"),
        (ShopConfig(n_items=-3), "n_items"),
        (ShopConfig(n_items=5, n_categories=6), "n_categories"),
        (ShopConfig(sessions_per_user_per_week=float("nan")), "sessions_per_user_per_week"),
        (ShopConfig(seed=-1), "seed"),
    ],
)
def test_bad_configs_are_refused_with_a_named_value(config: ShopConfig, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ShopWorld.create(config)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": -1}, "days"),
        ({"drift": ShopDrift(popularity_shift=1.5)}, "popularity_shift"),
        ({"drift": ShopDrift(price_shift=0.0)}, "price_shift"),
        ({"seed": -2}, "seed"),
    ],
)
def test_bad_simulation_arguments_are_refused(
    world: ShopWorld, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        world.simulate(MONDAY, **kwargs)  # type: ignore[arg-type]


def test_click_probability_is_higher_for_a_users_own_favourites(world: ShopWorld) -> None:
    users = np.arange(200)
    items = np.arange(SMALL.n_items)
    scores = world.taste_scores(users[:, None], items[None, :])
    favourites = np.argsort(-scores, axis=1)[:, :10]
    random = np.random.default_rng(0).integers(0, SMALL.n_items, size=(200, 10))
    p_fav = world.click_probability(users[:, None], favourites)
    p_random = world.click_probability(users[:, None], random)
    assert p_fav.shape == (200, 10)
    assert ((p_fav > 0) & (p_fav < 1)).all()
    assert p_fav.mean() > 3 * p_random.mean()
    with pytest.raises(UsageError, match="item_ids"):
        world.click_probability(np.array([0]), np.array([10**6]))


def test_als_beats_popularity_twice_over_on_the_next_week() -> None:
    """3 weeks to train, the next week to test: the planted tastes must be learnable."""
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    config = ShopConfig(n_users=1000, n_items=400, n_categories=12, seed=3)
    world = ShopWorld.create(config)
    train = world.simulate(MONDAY, 21)
    test = world.simulate(MONDAY + timedelta(days=21), 7)
    weight = pl.col("event").replace_strict({"view": 1.0, "add_to_cart": 4.0, "purchase": 10.0})
    pairs = train.group_by("user_id", "item_id").agg(weight.sum().alias("w"))
    matrix = sp.csr_matrix(
        (pairs["w"].to_numpy(), (pairs["user_id"].to_numpy(), pairs["item_id"].to_numpy())),
        shape=(config.n_users, config.n_items),
    )
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05, random_state=0)
        model.fit(matrix, show_progress=False)
    truth = test.group_by("user_id").agg(pl.col("item_id").unique()).sort("user_id")
    users = truth["user_id"].to_numpy()
    relevant = [set(items) for items in truth["item_id"].to_list()]
    als, _ = model.recommend(users, matrix[users], N=10, filter_already_liked_items=False)
    popular = np.argsort(-np.asarray(matrix.sum(axis=0)).ravel(), kind="stable")[:10]
    ndcg_als = _ndcg_at_10(als, relevant)
    ndcg_pop = _ndcg_at_10(np.tile(popular, (users.size, 1)), relevant)
    assert ndcg_als >= 2.0 * ndcg_pop
    # The same recommendations, judged by the planted click probabilities.
    assert world.click_probability(users[:, None], als).mean() > 1.2 * (
        world.click_probability(users[:, None], np.tile(popular, (users.size, 1))).mean()
    )


def _ndcg_at_10(recommended: np.ndarray, relevant: list[set[int]]) -> float:
    discount = 1.0 / np.log2(np.arange(2, 12))
    scores = []
    for recs, truth in zip(recommended, relevant, strict=True):
        gains = np.array([item in truth for item in recs[:10]], dtype=float)
        ideal = discount[: min(len(truth), 10)].sum()
        scores.append(float((gains * discount[: gains.size]).sum() / ideal))
    return float(np.mean(scores))


# -- the classification generator ----------------------------------------------------------
def test_classification_columns_and_reproducibility() -> None:
    frame = generate_classification(500, seed=4, n_numeric=5, n_categorical=2)
    assert frame.columns == ["f0", "f1", "f2", "f3", "f4", "c0", "c1", "label"]
    assert all(frame[c].dtype == pl.Float64 for c in ["f0", "f1", "f2", "f3", "f4"])
    assert frame["c0"].dtype == pl.String
    assert set(frame["label"].unique()) == {0, 1}
    assert 0.3 < frame["label"].mean() < 0.7  # type: ignore[operator]
    assert_frame_equal(frame, generate_classification(500, seed=4, n_numeric=5, n_categorical=2))
    assert not frame.equals(generate_classification(500, seed=5, n_numeric=5, n_categorical=2))


def test_classification_is_learnable_and_drift_moves_the_inputs() -> None:
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    def features(df: pl.DataFrame) -> np.ndarray:
        levels = {name: i for i, name in enumerate("abcdefgh")}
        codes = [pl.col(c).replace_strict(levels, return_dtype=pl.Int64) for c in ("c0", "c1", "c2")]
        return df.drop("label").with_columns(codes).to_numpy()

    train = generate_classification(4000, seed=0)
    test = generate_classification(2000, seed=1)
    model = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, n_jobs=1, verbose=-1)
    model.fit(features(train), train["label"].to_numpy())
    auc = roc_auc_score(test["label"].to_numpy(), model.predict_proba(features(test))[:, 1])
    assert 0.85 <= auc <= 0.97

    drifted = generate_classification(2000, seed=1, drift=True)
    spread = train["f0"].std()
    assert drifted["f0"].mean() - test["f0"].mean() > 0.8 * spread  # type: ignore[operator]
    assert drifted["f1"].std() > 1.5 * test["f1"].std()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_rows": 0}, "n_rows"),
        ({"n_rows": 5, "n_numeric": 0}, "n_numeric"),
        ({"n_rows": 5, "seed": -1}, "seed"),
    ],
)
def test_classification_refuses_bad_sizes(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        generate_classification(**kwargs)
