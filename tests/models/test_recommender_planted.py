"""Known answers on planted tastes: ALS finds each user's group; popularity cannot."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from conveyor.config import ModelType, Settings
from conveyor.evaluation import HoldoutSet, score
from conveyor.models import ImplicitRecommender, PopularityRecommender, make_model

SETTINGS = Settings.model_validate({"model": {"embedding_dim": 16, "epochs": 10}})


def split(data: pl.DataFrame):
    cutoff = data["timestamp"].max() - timedelta(days=7)
    train = data.filter(pl.col("timestamp") <= cutoff)
    test = data.filter(pl.col("timestamp") > cutoff).select("user_id", "item_id").unique()
    truth = test.join(train.select("user_id", "item_id").unique(), on=["user_id", "item_id"], how="anti")
    return train, HoldoutSet.from_truth(truth, k=10, max_users=10_000, seed=0)


def test_als_recommends_from_each_users_planted_group(interactions):
    model = make_model(ModelType.ALS, {}, SETTINGS).fit(interactions)
    users = list(range(50))
    recs = model.recommend(users, 10)
    same_group = np.mean([[item % 5 == rec.user_id % 5 for item in rec.items] for rec in recs])
    assert same_group >= 0.9
    assert not any(r.fallback for r in recs)


def test_als_beats_popularity_on_ndcg_by_a_wide_margin(interactions):
    train, test = split(interactions)
    als = score(make_model(ModelType.ALS, {}, SETTINGS).fit(train), test).metrics["ndcg_at_10"]
    popular = score(PopularityRecommender().fit(train), test).metrics["ndcg_at_10"]
    assert als >= 2.0 * popular
    assert als > 0.2


def test_unknown_users_get_the_popular_items_flagged_as_fallback(interactions):
    model = ImplicitRecommender(params={"factors": 8, "iterations": 3}).fit(interactions)
    rec = model.recommend(["nobody"], 5)[0]
    assert rec.fallback
    assert rec.items == model.popular(5)
    counts = interactions.group_by("item_id").len()
    assert rec.items[0] in counts.filter(pl.col("len") > counts["len"].quantile(0.9))["item_id"].to_list()


def test_seen_items_are_excluded_and_batches_match_single_requests(interactions):
    model = ImplicitRecommender(params={"factors": 8, "iterations": 3}).fit(interactions)
    seen = set(interactions.filter(pl.col("user_id") == 7)["item_id"].to_list())
    batch = model.recommend([7, 8, 9], 10)
    assert not seen & set(batch[0].items)
    singles = [model.recommend([u], 10)[0] for u in (7, 8, 9)]
    # a batch is one matrix product, a single user a matrix-vector product: same items,
    # scores equal up to float32 rounding
    assert [r.items for r in singles] == [r.items for r in batch]
    assert np.allclose([r.scores for r in singles], [r.scores for r in batch], rtol=1e-5)
    assert model.recommend([7, 8, 9], 10) == batch  # the same input gives the same bytes
    with_seen = model.recommend([7], 10, exclude_seen=False)[0]
    assert set(with_seen.items) & seen
    assert model.recommend(["7"], 3)[0].fallback is False  # "7" finds integer id 7


def test_weights_follow_the_configured_events():
    data = pl.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "item_id": [10, 10, 20, 30],
            "timestamp": [0, 0, 0, 0],
            "event": ["view", "view", "purchase", "add_to_cart"],
        }
    )
    model = PopularityRecommender(event_weights={"view": 1.0, "add_to_cart": 4.0, "purchase": 10.0}).fit(data)
    assert model.popular(3) == [20, 30, 10]
    weighted = PopularityRecommender().fit(
        data.drop("event").with_columns(weight=pl.Series([1.0, 1.0, 0.5, 5.0]))
    )
    assert weighted.popular(3) == [30, 10, 20]
