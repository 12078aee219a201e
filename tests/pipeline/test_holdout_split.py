"""The recommender hold-out: per user (default) or by global time, on known-answer logs."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from conveyor.config import SplitMethod, parse_settings
from conveyor.errors import ConfigError, UsageError
from conveyor.pipeline._split import split_interactions, split_notes

T0 = datetime(2025, 1, 1)


def log(history: dict[str, int]) -> pl.DataFrame:
    """User u has history[u] interactions, with items u0, u1, … one day apart (user a starts in 2025,
    user b a year later, so a global "last 7 days" sees only b)."""
    rows = []
    for offset, (user, n) in enumerate(history.items()):
        start = T0 + timedelta(days=365 * offset)
        rows += [(user, f"{user}{i}", start + timedelta(days=i)) for i in range(n)]
    return pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row").sample(
        fraction=1.0, shuffle=True, seed=1
    )


def settings(**evaluation: object):
    return parse_settings({"evaluation": evaluation})


def test_per_user_holds_out_each_users_last_fraction():
    split = split_interactions(log({"a": 10, "b": 20, "c": 3}), settings())
    truth = {u: sorted(g["item_id"].to_list()) for (u,), g in split.test.group_by("user_id")}
    assert truth == {"a": ["a8", "a9"], "b": ["b16", "b17", "b18", "b19"]}  # last 20 %
    assert split.train.height == 8 + 16 + 3  # c (3 < 5 interactions) trains only
    d = split.description
    assert (d["split"], d["users"], d["users_too_short"], d["test_users"], d["test_pairs"]) == (
        "per-user",
        3,
        1,
        2,
        6,
    )
    assert split_notes(d) == [
        "held out each user's last 20 % (at least 1) interactions: 2 users, 6 pairs to find; "
        "1 users with fewer than 5 interactions train only"
    ]


def test_leave_last_n_and_a_seen_item_is_not_a_target():
    df = log({"a": 6, "b": 6})
    # b's last interaction repeats an item b already had: nothing new to find
    df = df.with_columns(
        pl.when(pl.col("item_id") == "b5").then(pl.lit("b0")).otherwise(pl.col("item_id")).alias("item_id")
    )
    split = split_interactions(df, settings(holdout_last_n=1, min_user_interactions=2))
    assert split.test.rows() == [("a", "a5")]
    assert split.description["users_nothing_new"] == 1


def test_global_time_is_an_option():
    split = split_interactions(log({"a": 10, "b": 20}), settings(split="global-time"))
    assert split.description["split"] == SplitMethod.GLOBAL_TIME.value
    assert set(split.test["user_id"]) == {"b"}  # only b was active in the last 7 days


def test_nobody_with_enough_history_is_a_usage_error():
    with pytest.raises(UsageError, match=r"evaluation\.min_user_interactions=5: no user has that many"):
        split_interactions(log({"a": 2, "b": 3}), settings())


@pytest.mark.parametrize(
    ("raw", "key", "message"),
    [
        ({"split": "random"}, "evaluation.split", "'per-user' or 'global-time'"),
        ({"holdout_last_fraction": 1.5}, "evaluation.holdout_last_fraction", "less than 1"),
        ({"min_evaluated": 0}, "evaluation.min_evaluated", "greater than 0"),
        ({"not_enough_evidence": "ignore"}, "evaluation.not_enough_evidence", "'fail' or 'continue'"),
        ({"holdout_last_n": 5}, "evaluation", "holdout_last_n (5) must be below min_user_interactions (5)"),
    ],
)
def test_bad_evaluation_settings_name_the_key(raw, key, message):
    with pytest.raises(ConfigError, match="evaluation") as err:
        parse_settings({"evaluation": raw})
    assert err.value.key == key
    assert message in str(err.value)
