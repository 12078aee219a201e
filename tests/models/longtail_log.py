"""A realistic interaction log: a long tail of users over two years, long-tail items, planted tastes.

Used by ``tests/models/test_recommender_longtail.py`` and by
``benchmarks/recommender_holdout.py`` (which prints the figure in
docs/statistics.md). What a real shop's log looks like and the old global
time split got wrong:

- users have 1 to 2,000 interactions (a discretised log-normal: the median user
  has about 8, a few hundred have hundreds, the heaviest 2,000), each user active
  over their own stretch of a two-year log, so a "last 7 days" hold-out sees
  only a handful of them;
- item popularity is a Zipf-like long tail (exponent 1.0) over the catalogue;
- every user and item belongs to one of ``groups`` taste groups; a user picks
  ``taste`` of their interactions inside their group (by the in-group long
  tail) and the rest by global popularity — so "popular in my group" is the
  right answer and "most popular overall" a weak one.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

START = datetime(2024, 11, 1)
DAYS = 730


def longtail_log(
    n_users: int = 4_000,
    n_items: int = 3_000,
    *,
    groups: int = 20,
    taste: float = 0.8,
    seed: int = 0,
) -> pl.DataFrame:
    """Columns user_id, item_id, timestamp (datetime), event; sorted by time."""
    rng = np.random.default_rng(seed)
    counts = np.clip(np.round(rng.lognormal(mean=2.1, sigma=1.4, size=n_users)), 1, 2_000).astype(np.int64)
    counts[rng.choice(n_users, 3, replace=False)] = 2_000  # the heaviest users exist
    users = np.repeat(np.arange(n_users), counts)
    item_group = rng.integers(0, groups, n_items)
    rank = rng.permutation(n_items) + 1
    pop = 1.0 / rank.astype(np.float64)
    global_p = pop / pop.sum()
    user_group = rng.integers(0, groups, n_users)[users]
    items = rng.choice(n_items, users.size, p=global_p)
    inside = rng.random(users.size) < taste
    for g in range(groups):
        members = np.flatnonzero(item_group == g)
        p = pop[members] / pop[members].sum()
        rows = np.flatnonzero(inside & (user_group == g))
        items[rows] = rng.choice(members, rows.size, p=p)
    # each user's active stretch inside the two years; interactions spread over it
    first = rng.uniform(0, DAYS * 0.9, n_users)
    span = np.minimum(DAYS - first, rng.exponential(120.0, n_users) + 1.0)
    offsets = first[users] + rng.random(users.size) * span[users]
    events = rng.choice(["view", "add_to_cart", "purchase"], users.size, p=[0.8, 0.15, 0.05])
    return pl.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": items.astype(np.int64),
            "timestamp": np.datetime64(START, "us") + (offsets * 86_400e6).astype("timedelta64[us]"),
            "event": events,
        }
    ).sort("timestamp")
