"""Synthetic data with a known answer: users with planted tastes, rows with a planted rule."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

GROUPS = 5


def planted_interactions(
    n_users: int = 300, n_items: int = 500, per_user: int = 30, days: int = 28, seed: int = 0
) -> pl.DataFrame:
    """Item i belongs to taste group i % 5; user u to group u % 5 and picks 90 % of its items there.

    Popularity is long-tailed inside every group, so "most popular overall" is a weak answer and
    "popular in my group" the right one.
    """
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    group = users % GROUPS
    pop = 1.0 / np.arange(1, n_items // GROUPS + 1) ** 0.7
    pop /= pop.sum()
    in_group = rng.choice(n_items // GROUPS, users.size, p=pop) * GROUPS + group
    anywhere = rng.integers(0, n_items, users.size)
    items = np.where(rng.random(users.size) < 0.9, in_group, anywhere)
    start = datetime(2026, 10, 1)
    seconds = rng.integers(0, days * 86400, users.size)
    events = rng.choice(["view", "add_to_cart", "purchase"], users.size, p=[0.8, 0.15, 0.05])
    return pl.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": items.astype(np.int64),
            "timestamp": [start + timedelta(seconds=int(s)) for s in seconds],
            "event": events,
        }
    ).sort("timestamp")


def planted_rows(n: int = 400, seed: int = 0) -> pl.DataFrame:
    """label = "yes" when x + (colour == "red") > 0.5, with 5 % label noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n)
    y = (x + (colour == "red") > 0.5) ^ (rng.random(n) < 0.05)
    return pl.DataFrame(
        {"x": x, "colour": colour, "noise": rng.normal(size=n), "label": np.where(y, "yes", "no")}
    )


@pytest.fixture
def interactions() -> pl.DataFrame:
    return planted_interactions()


@pytest.fixture
def rows() -> pl.DataFrame:
    return planted_rows()


RECOMMENDER_YAML = """\
project:
  name: shop
model:
  embedding_dim: 16
  epochs: 8
gates:
  latency_p95_ms: 1000
"""

CLASSIFIER_YAML = """\
project:
  name: churn
  template: classifier
data:
  source: data/raw/train.parquet
  target: label
model:
  type: random-forest
  primary_metric: roc_auc
  params: {n_estimators: 20}
  matrix:
    - {type: random-forest, params: {n_estimators: 20}}
    - {type: xgboost, params: {n_estimators: 20}}
    - {type: lightgbm, params: {n_estimators: 20}}
gates:
  no_regression: {metric: roc_auc}
  latency_p95_ms: 1000
"""


@pytest.fixture
def recommender_project(tmp_path):
    root = tmp_path / "shop"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "conveyor.yaml").write_text(RECOMMENDER_YAML)
    planted_interactions().write_parquet(root / "data" / "raw" / "interactions.parquet")
    return root


@pytest.fixture
def classifier_project(tmp_path):
    root = tmp_path / "churn"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "conveyor.yaml").write_text(CLASSIFIER_YAML)
    planted_rows().write_parquet(root / "data" / "raw" / "train.parquet")
    return root
