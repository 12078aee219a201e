"""Ranking metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from conveyor.evaluation import ranking_scores, user_scores


def test_one_user_by_hand():
    # relevant {a, c, x}; ranked [a, b, c, d]; hits at ranks 1 and 3
    got = user_scores(["a", "b", "c", "d"], {"a", "c", "x"}, k=4)
    assert got["precision"] == pytest.approx(2 / 4)
    assert got["recall"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert got["ndcg"] == pytest.approx(dcg / idcg)
    assert got["map"] == pytest.approx((1 / 1 + 2 / 3) / 3)


def test_perfect_and_empty_rankings():
    assert user_scores([1, 2], {1, 2}, k=2) == {"precision": 1.0, "recall": 1.0, "ndcg": 1.0, "map": 1.0}
    assert user_scores([3, 4], {1, 2}, k=2) == {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0}


def test_only_the_top_k_count():
    got = user_scores([9, 9, 1], {1}, k=2)
    assert got["precision"] == 0.0
    assert got["ndcg"] == 0.0


def test_map_divides_by_min_of_k_and_relevant():
    # 5 relevant, k=2, both hits: AP = (1/1 + 2/2) / min(2, 5) = 1
    assert user_scores([1, 2], {1, 2, 3, 4, 5}, k=2)["map"] == 1.0


def test_means_over_users_with_relevant_items_and_coverage():
    result = ranking_scores(
        ["u1", "u2", "u3"],
        [["a", "b"], ["c", "d"], ["a", "e"]],
        [{"a"}, {"z"}, set()],  # u3 has nothing relevant: left out of the means
        k=2,
        catalogue_size=10,
    )
    summary = result.summary()
    assert result.users == ["u1", "u2"]
    assert summary["precision_at_2"] == pytest.approx((1 / 2 + 0) / 2)
    assert summary["ndcg_at_2"] == pytest.approx(0.5)
    assert summary["coverage"] == pytest.approx(5 / 10)  # a, b, c, d, e
