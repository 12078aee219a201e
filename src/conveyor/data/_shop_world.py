"""Drawing a shop world: products, users and their hidden tastes, from one seed.

Products are grouped three levels deep: category → product type (a hidden
cluster of about ``CLUSTER_SIZE`` items, e.g. "running shoes" within "shoes")
→ item. Embeddings follow the same tree (category centre + type offset + item
offset), so a user's taste separates categories, types within a category and
items within a type, whatever the catalogue's size.

The world also holds the category a ``new_category`` drift brings: its types
and items come after the world's own (item ids ``n_items`` and up), drawn from
the same seed so that every drifted simulation agrees on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from conveyor.data import _shop_params as p
from conveyor.errors import UsageError

if TYPE_CHECKING:
    from conveyor.data._shop import ShopConfig, ShopDrift

EVENTS = ("view", "add_to_cart", "purchase")
VIEW, CART, PURCHASE = 0, 1, 2

CATEGORY_NAMES = (
    "electronics", "books", "clothing", "shoes", "home", "kitchen", "garden", "toys",
    "sports", "beauty", "health", "grocery", "pets", "music", "movies", "games",
    "office", "automotive", "jewelry", "baby", "tools", "outdoor", "crafts", "furniture",
)  # fmt: skip
NEW_CATEGORY_NAME = "smart_home"  # the category a new-category drift brings (absent from the world)


@dataclass(frozen=True)
class Segments:
    names: tuple[str, ...]
    share: np.ndarray
    price_sensitivity: np.ndarray  # cart log-odds per unit of log(price / category median)
    conversion: np.ndarray  # chance that a session with carts checks out
    activity: np.ndarray  # session-rate multiplier


SEGMENTS = Segments(
    names=("bargain", "regular", "premium"),
    share=np.array([0.3, 0.5, 0.2]),
    price_sensitivity=np.array([1.2, 0.6, 0.1]),
    conversion=np.array([0.35, 0.45, 0.6]),
    activity=np.array([1.1, 1.0, 0.85]),
)


@dataclass(frozen=True)
class WorldArrays:
    """Everything drawn once per world; an item's index is its id.

    Items ``0..n_items-1`` and categories ``0..n_categories-1`` are the world's;
    the last category and the items after ``n_items`` belong to a new-category drift.
    """

    n_items: int
    category_names: tuple[str, ...]
    category_median_price: np.ndarray  # (n_categories + 1,)
    centres: np.ndarray  # (n_categories + 1, d)
    cluster_category: np.ndarray  # (n_clusters,)
    cluster_centre: np.ndarray  # (n_clusters, d) float32
    item_cluster: np.ndarray  # (n_all_items,)
    item_category: np.ndarray  # (n_all_items,)
    item_price: np.ndarray  # (n_all_items,)
    item_logpop: np.ndarray  # (n_all_items,) log base popularity
    item_emb: np.ndarray  # (n_all_items, d) float32
    user_segment: np.ndarray  # (n_users,)
    user_activity: np.ndarray  # (n_users,) mean 1
    user_taste: np.ndarray  # (n_users, d) float32

    @property
    def new_category(self) -> int:
        return len(self.category_names) - 1


def validate_config(config: ShopConfig) -> None:
    for name, value in (
        ("n_users", config.n_users),
        ("n_items", config.n_items),
        ("n_categories", config.n_categories),
        ("taste_dim", config.taste_dim),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be a whole number ≥ 1, got {value!r}")
    if config.n_categories > config.n_items:
        raise UsageError(f"n_categories ({config.n_categories}) must not exceed n_items ({config.n_items})")
    rate = config.sessions_per_user_per_week
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate < 0:
        raise UsageError(f"sessions_per_user_per_week must be a number ≥ 0, got {rate!r}")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise UsageError(f"seed must be a whole number ≥ 0, got {config.seed!r}")
    if not isinstance(config.start, date):
        raise UsageError(f"start must be a date, got {config.start!r}")


def validate_drift(drift: ShopDrift) -> None:
    shift = drift.popularity_shift
    if isinstance(shift, bool) or not isinstance(shift, int | float) or not 0.0 <= shift <= 1.0:
        raise UsageError(f"popularity_shift must lie in 0..1, got {shift!r}")
    price = drift.price_shift
    if (
        isinstance(price, bool)
        or not isinstance(price, int | float)
        or not math.isfinite(price)
        or price <= 0
    ):
        raise UsageError(f"price_shift must be a positive factor (1.0: unchanged), got {price!r}")


def category_names(n: int) -> tuple[str, ...]:
    names = [CATEGORY_NAMES[k] if k < len(CATEGORY_NAMES) else f"category_{k:03d}" for k in range(n)]
    return (*names, NEW_CATEGORY_NAME)


def draw_world(config: ShopConfig) -> WorldArrays:
    rng = np.random.default_rng([config.seed, 0xC0])
    d, k, n_items = config.taste_dim, config.n_categories, config.n_items
    centres = rng.normal(0.0, p.CENTRE_SCALE / math.sqrt(d), size=(k + 1, d))
    median_price = np.exp(rng.normal(3.4, 0.9, size=k + 1))  # ~30 typical; 5..200 across categories

    # The world's product types and items; the new category's come after them.
    n_clusters = max(k, round(n_items / p.CLUSTER_SIZE))
    cluster_category = _spread(rng, n_clusters, k)
    item_cluster = _spread(rng, n_items, n_clusters)
    n_new = max(5, n_items // k)
    n_new_clusters = min(n_new, max(1, round(n_new / p.CLUSTER_SIZE)))
    cluster_category = np.concatenate([cluster_category, np.full(n_new_clusters, k)])
    item_cluster = np.concatenate([item_cluster, n_clusters + _spread(rng, n_new, n_new_clusters)])

    cluster_centre = centres[cluster_category] + _noise(rng, p.CLUSTER_NOISE, cluster_category.size, d)
    item_category = cluster_category[item_cluster]
    item_emb = cluster_centre[item_cluster] + _noise(rng, p.ITEM_NOISE, item_cluster.size, d)
    cluster_price = median_price[cluster_category] * np.exp(rng.normal(0.0, 0.35, cluster_category.size))
    raw_price = cluster_price[item_cluster] * np.exp(rng.normal(0.0, 0.35, item_cluster.size))
    item_price = np.maximum(np.floor(raw_price) + 0.99, 0.99)  # shop prices end in .99
    item_logpop = np.concatenate([_zipf_logpop(rng, n_items), _zipf_logpop(rng, n_new)])

    user_segment = rng.choice(len(SEGMENTS.names), size=config.n_users, p=SEGMENTS.share)
    activity = np.exp(rng.normal(0.0, 0.6, size=config.n_users)) * SEGMENTS.activity[user_segment]
    # Tastes lean towards one to three favourite categories, plus a personal part.
    n_fav = rng.integers(1, 4, size=config.n_users)
    lean = np.zeros((config.n_users, d))
    for slot in range(3):  # three vectorised passes, not a loop over users
        fav = rng.integers(0, k, size=config.n_users)
        weight = rng.uniform(0.5, 1.0, size=config.n_users) * (slot < n_fav)
        lean += weight[:, None] * centres[fav]
    lean /= np.maximum(np.linalg.norm(lean, axis=1, keepdims=True), 1e-9)
    user_taste = p.TASTE_FAVOURITE_WEIGHT * lean + _noise(rng, p.TASTE_NOISE, config.n_users, d)

    return WorldArrays(
        n_items=n_items,
        category_names=category_names(k),
        category_median_price=median_price,
        centres=centres,
        cluster_category=cluster_category,
        cluster_centre=cluster_centre.astype(np.float32),
        item_cluster=item_cluster,
        item_category=item_category,
        item_price=item_price,
        item_logpop=item_logpop,
        item_emb=item_emb.astype(np.float32),
        user_segment=user_segment,
        user_activity=activity / activity.mean(),
        user_taste=user_taste.astype(np.float32),
    )


def _spread(rng: np.random.Generator, n: int, groups: int) -> np.ndarray:
    """Assign n things to groups of uneven size, every group getting at least one."""
    share = rng.dirichlet(np.full(groups, 2.0))
    assigned = np.concatenate([np.arange(groups), rng.choice(groups, size=n - groups, p=share)])
    return np.asarray(rng.permutation(assigned))


def _noise(rng: np.random.Generator, norm: float, n: int, d: int) -> np.ndarray:
    """Gaussian vectors whose length is about ``norm``."""
    return rng.normal(0.0, norm / math.sqrt(d), size=(n, d))


def _zipf_logpop(rng: np.random.Generator, n: int) -> np.ndarray:
    ranks = rng.permutation(n) + 1
    return np.asarray(-p.ZIPF_EXPONENT * np.log(ranks))
