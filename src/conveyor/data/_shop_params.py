"""Tuning of the shop simulation: every behavioural constant, named in one place."""

from __future__ import annotations

import numpy as np

# -- the world ---------------------------------------------------------------------------
ZIPF_EXPONENT = 1.0  # item popularity ∝ rank^-s
CLUSTER_SIZE = 50  # items per hidden product type, on average
CENTRE_SCALE = 1.0  # length of a category centre in taste space
CLUSTER_NOISE = 0.8  # length of a product type's offset from its category centre
ITEM_NOISE = 0.7  # length of an item's offset from its product type
TASTE_FAVOURITE_WEIGHT = 2.5  # how far a user leans to favourite categories
TASTE_NOISE = 2.5  # length of a user's personal taste part

# -- sessions ------------------------------------------------------------------------------
DAY_WEIGHTS = np.array([0.92, 0.88, 0.9, 0.95, 1.02, 1.23, 1.1])  # Monday..Sunday: weekend peak
HOUR_WEIGHTS = np.array(
    [0.35, 0.2, 0.12, 0.08, 0.08, 0.12, 0.25, 0.45, 0.65, 0.8, 0.9, 0.95,
     1.05, 1.0, 0.95, 0.95, 1.0, 1.1, 1.3, 1.5, 1.6, 1.5, 1.15, 0.7]
)  # fmt: skip  # evening peak, night trough, a lunch bump
MEAN_VIEWS_PER_SESSION = 9.0
STAY_IN_MAIN_CATEGORY = 0.8  # share of a session's views in its main category
MEAN_VIEW_GAP_S = 45.0
NEW_CATEGORY_SHARE = 0.2  # share of sessions the new category takes under drift

# -- choosing what to view: popularity proposes, taste decides -------------------------------
CATEGORY_TEMPERATURE = 0.4  # lower: tastes dominate more
CLUSTER_TEMPERATURE = 0.4
ITEM_TEMPERATURE = 0.4
CLUSTER_CANDIDATES = 16  # importance-resampling candidates per view: product types
ITEM_CANDIDATES = 16  # and items
CLUSTER_POPULARITY_POWER = 0.25  # a product type's pull: (sum of its items' popularity) ** power
CLUSTER_TABLE = 1024  # popularity draws per category, refreshed daily
ITEM_TABLE = 256  # popularity draws per product type, refreshed daily

# -- the funnel and clicks -----------------------------------------------------------------------
CART_INTERCEPT = -4.4
CART_TASTE_SLOPE = 0.6
BUY_CARTED = 0.85  # share of carted items bought when the session checks out
CLICK_INTERCEPT = -4.0
CLICK_TASTE_SLOPE = 0.9

# -- a broken upstream feed ------------------------------------------------------------------------
BROKEN_SHARE = 0.03
GARBAGE_TIMESTAMPS = ("N/A", "not-a-timestamp", "2026-13-45 25:61:00", "", "31/02/2026", "NaT")
