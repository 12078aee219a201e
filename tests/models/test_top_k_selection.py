"""Top-k selection (the block-bounded search behind recommend) against a brute-force sort."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from conveyor.models import ImplicitRecommender, PopularityRecommender
from conveyor.models._interactions import top_k


def brute_force(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row fully sorted: best score first, ties by lowest position, NaN last."""
    n = scores.shape[1]
    positions = []
    for row in scores:
        usable = np.where(np.isnan(row), -np.inf, row)
        positions.append(np.lexsort((np.arange(n), -usable))[: min(k, n)])
    order = np.array(positions)
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.mark.parametrize("seed", range(6))
def test_top_k_matches_a_full_sort_on_ties_infinities_and_large_rows(seed):
    rng = np.random.default_rng(seed)
    n = [7, 300, 5_000, 20_000, 50_001, 1_000][seed]
    k = [3, 10, 10, 25, 10, 100][seed]
    # integer scores make ties common; -inf marks excluded items
    scores = rng.integers(0, 40, (12, n)).astype(np.float32)
    scores[rng.random((12, n)) < 0.3] = -np.inf
    scores[0, :] = -np.inf  # nothing usable
    scores[1, 2:] = -np.inf  # fewer usable items than k
    got_pos, got_val = top_k(scores, k)
    want_pos, want_val = brute_force(scores, k)
    assert got_pos.shape == want_pos.shape == (12, min(k, n))
    usable = np.isfinite(want_val)
    assert np.array_equal(np.isfinite(got_val), usable)
    assert np.array_equal(got_pos[usable], want_pos[usable])
    assert np.array_equal(got_val[usable], want_val[usable])


def test_top_k_breaks_ties_by_position_and_skips_nan():
    scores = np.array([[1.0, 3.0, 3.0, np.nan, 2.0, 3.0]], dtype=np.float32)
    positions, values = top_k(scores, 4)
    assert positions.tolist() == [[1, 2, 5, 4]]
    assert values.tolist() == [[3.0, 3.0, 3.0, 2.0]]


def test_top_k_of_more_than_the_row_holds_returns_the_whole_row_sorted():
    positions, values = top_k(np.array([[0.5, 2.0, 1.0]], dtype=np.float32), 10)
    assert positions.tolist() == [[1, 2, 0]]
    assert values.tolist() == [[2.0, 1.0, 0.5]]


def test_baseline_fitted_from_the_models_matrix_equals_one_fitted_from_the_data(interactions):
    model = ImplicitRecommender(params={"factors": 8, "iterations": 2}).fit(interactions)
    shared = PopularityRecommender().fit_like(model)
    alone = PopularityRecommender().fit(interactions)
    users = [*interactions["user_id"].unique().sort().to_list()[:50], 10**9]
    assert [r.items for r in shared.recommend(users, 10)] == [r.items for r in alone.recommend(users, 10)]
    assert np.array_equal(shared.popularity_, alone.popularity_)


def test_norm_pruned_recommendations_equal_scoring_every_item():
    """5,000 items (pruning applies): the answer equals scoring all items, seen ones excluded."""
    rng = np.random.default_rng(3)
    n_users, n_items = 400, 5_000
    users = np.concatenate([np.arange(n_items) % n_users, rng.integers(0, n_users, 20_000)])
    items = np.concatenate([np.arange(n_items), (rng.zipf(1.3, 20_000) - 1) % n_items])
    data = pl.DataFrame({"user_id": users, "item_id": items, "event": ["view"] * users.size})
    model = ImplicitRecommender(params={"factors": 16, "iterations": 3}).fit(data)
    assert model.n_items >= model.MIN_PRUNED_ITEMS
    model.user_factors_[7] = 0.0  # no bound can certify this user: the full scoring path
    rows = np.arange(model.n_users)
    for exclude_seen in (True, False):
        pruned = model._top_for(rows, 10, exclude_seen=exclude_seen)
        full = model._head_top(model.user_factors_, rows, 10, model.n_items, exclude_seen=exclude_seen)
        assert np.array_equal(pruned[0], full[0])
        np.testing.assert_allclose(pruned[1], full[1], rtol=1e-6)
    # and against a float64 brute force on a user with clear gaps between scores
    scores = model.item_factors_.astype(np.float64) @ model.user_factors_[3].astype(np.float64)
    seen = model.state_.matrix[3].indices
    scores[seen] = -np.inf
    best = np.argsort(-scores, kind="stable")[:10]
    got = model.recommend([int(model._users.values[3])], 10)[0]
    assert got.items == [int(model._items.values[j]) for j in best]
