"""One simulated day of shop sessions, vectorised over users, sessions and views.

What a view shows is drawn top-down: a category (exactly, from the user's
category affinities), then a product type and then an item, each by
sampling–importance–resampling: candidates proposed by
popularity, one kept with probability ∝ exp(taste · embedding / temperature).
This approximates drawing ∝ popularity × exp(score / temperature) without a
user × item matrix, at a cost per view that does not grow with the catalogue.

Popularity proposals come from tables of draws refreshed every day (a form of
daily popularity noise): a proposal is then one random index, not a search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conveyor.data import _shop_params as p
from conveyor.data._shop_world import CART, PURCHASE, SEGMENTS, VIEW, WorldArrays

_CHUNK = 65_536  # views scored at a time: bounds the (views × candidates × dim) temporaries
_PURCHASE_SEQ = 1 << 40  # purchases sort after every view and cart of their session


@dataclass(frozen=True)
class Catalogue:
    """The items a simulation may show, and their popularity (drift applied)."""

    items: np.ndarray  # ids of the items on show
    weight: np.ndarray  # their popularity
    n_categories: int  # categories on show (the world's, plus the new one under drift)
    log_share: np.ndarray  # per world category: log share of items (a traffic prior)

    @classmethod
    def build(cls, w: WorldArrays, logpop: np.ndarray, with_new: bool) -> Catalogue:
        items = np.arange(logpop.size if with_new else w.n_items)
        weight = np.exp(logpop[items] - logpop[items].max())
        counts = np.bincount(w.item_category[: w.n_items], minlength=w.new_category).astype(np.float64)
        n_categories = w.new_category + 1 if with_new else w.new_category
        return cls(items, weight, n_categories, np.log(counts / counts.sum()))

    def tables(self, w: WorldArrays, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Today's popularity draws: product types per category, items per product type."""
        clusters = np.unique(w.item_cluster[self.items])
        cluster_weight = (
            np.bincount(w.item_cluster[self.items], weights=self.weight)[clusters]
            ** p.CLUSTER_POPULARITY_POWER
        )
        n_groups = w.cluster_category.size
        by_category = _draw_table(
            rng, clusters, w.cluster_category[clusters], cluster_weight, w.new_category + 1, p.CLUSTER_TABLE
        )
        by_cluster = _draw_table(
            rng, self.items, w.item_cluster[self.items], self.weight, n_groups, p.ITEM_TABLE
        )
        return by_category, by_cluster


def simulate_day(
    w: WorldArrays,
    catalogue: Catalogue,
    rng: np.random.Generator,
    *,
    day_start_us: int,
    session_base: int,
    rate: float,
) -> dict[str, np.ndarray]:
    """Arrays (user, item, ts, event, price, category, session, seq) of one day's events."""
    by_category, by_cluster = catalogue.tables(w, rng)
    # Sessions: a Poisson number per user, starting at hours of the daily cycle.
    s_user = np.repeat(np.arange(w.user_activity.size), rng.poisson(rate * w.user_activity))
    n_sessions = s_user.size
    hour_p = p.HOUR_WEIGHTS / p.HOUR_WEIGHTS.sum()
    s_start = rng.choice(24, size=n_sessions, p=hour_p) * 3600.0 + rng.uniform(0.0, 3600.0, n_sessions)
    s_views = rng.geometric(1.0 / p.MEAN_VIEWS_PER_SESSION, size=n_sessions)
    s_main = _draw_categories(w, catalogue, rng, s_user)

    # Views: mostly in the session's main category, some wandering off.
    v_session = np.repeat(np.arange(n_sessions), s_views)
    v_user = s_user[v_session]
    n_views = v_session.size
    v_cat = s_main[v_session]
    wander = rng.random(n_views) >= p.STAY_IN_MAIN_CATEGORY
    v_cat[wander] = _draw_categories(w, catalogue, rng, v_user[wander])
    v_item, v_score = _pick_items(w, rng, v_user, v_cat, by_category, by_cluster)

    # View times: exponential gaps from the session start.
    first = np.cumsum(s_views) - s_views
    gaps = rng.exponential(p.MEAN_VIEW_GAP_S, n_views)
    gaps[first] = 0.0
    elapsed = np.cumsum(gaps)
    v_time = s_start[v_session] + elapsed - elapsed[first][v_session]

    # Add to cart: likelier for items the user likes, less likely when expensive for the segment.
    segment = w.user_segment[v_user]
    rel_price = np.log(w.item_price[v_item] / w.category_median_price[w.item_category[v_item]])
    logit = p.CART_INTERCEPT + p.CART_TASTE_SLOPE * v_score - SEGMENTS.price_sensitivity[segment] * rel_price
    carted = np.flatnonzero(rng.random(n_views) < 1.0 / (1.0 + np.exp(-logit)))
    c_time = v_time[carted] + rng.uniform(5.0, 60.0, carted.size)

    # Checkout: a session with carts converts at its segment's rate; most carted items are bought.
    c_session = v_session[carted]
    has_cart = np.bincount(c_session, minlength=n_sessions) > 0
    converts = has_cart & (rng.random(n_sessions) < SEGMENTS.conversion[w.user_segment[s_user]])
    bought = carted[converts[c_session] & (rng.random(carted.size) < p.BUY_CARTED)]
    s_end = v_time[first + s_views - 1] + 60.0  # after the last view and its cart
    p_session = v_session[bought]
    p_time = s_end[p_session] + rng.uniform(30.0, 180.0, bought.size)

    items = np.concatenate([v_item, v_item[carted], v_item[bought]])
    view_seq = 2 * (np.arange(n_views) - first[v_session])
    seconds = np.concatenate([v_time, c_time, p_time])
    return {
        "user": np.concatenate([v_user, v_user[carted], v_user[bought]]),
        "item": items,
        "ts": day_start_us + np.round(seconds * 1e6).astype(np.int64),
        "event": np.concatenate(
            [np.full(n_views, VIEW), np.full(carted.size, CART), np.full(bought.size, PURCHASE)]
        ).astype(np.int8),
        "session": session_base + np.concatenate([v_session, c_session, p_session]),
        "seq": np.concatenate([view_seq, view_seq[carted] + 1, _PURCHASE_SEQ + view_seq[bought]]),
    }


def _draw_table(
    rng: np.random.Generator,
    children: np.ndarray,
    parent: np.ndarray,
    weight: np.ndarray,
    n_parents: int,
    size: int,
) -> np.ndarray:
    """(n_parents, size) children drawn ∝ weight within each parent (rows of empty parents: -1).

    One search for all parents: within-parent cumulative weights are offset by
    the parent's index, so that parent ``g`` owns the interval (g, g + 1].
    """
    order = np.argsort(parent, kind="stable")
    sorted_parent = parent[order]
    w = weight[order]
    counts = np.bincount(sorted_parent, minlength=n_parents)
    totals = np.bincount(sorted_parent, weights=w, minlength=n_parents)
    within = np.cumsum(w) - np.repeat(np.cumsum(totals) - totals, counts)
    cum = sorted_parent + within / totals[sorted_parent]
    first = np.cumsum(counts) - counts
    slot = np.searchsorted(cum, np.arange(n_parents)[:, None] + rng.random((n_parents, size)), side="right")
    slot = np.clip(slot, first[:, None], np.maximum(first + counts - 1, first)[:, None])
    table = children[order][np.minimum(slot, children.size - 1)]
    table[counts == 0] = -1
    return np.asarray(table)


def _draw_categories(
    w: WorldArrays, catalogue: Catalogue, rng: np.random.Generator, users: np.ndarray
) -> np.ndarray:
    """One category per row, ∝ category share × exp(taste · centre / temperature)."""
    centres = w.centres[: w.new_category].T.astype(np.float32)
    logits = (w.user_taste[users] @ centres) / p.CATEGORY_TEMPERATURE + catalogue.log_share
    chosen = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    if catalogue.n_categories > w.new_category:  # the new category takes its share of traffic
        chosen[rng.random(users.size) < p.NEW_CATEGORY_SHARE] = w.new_category
    return np.asarray(chosen)


def _pick_items(
    w: WorldArrays,
    rng: np.random.Generator,
    users: np.ndarray,
    categories: np.ndarray,
    by_category: np.ndarray,
    by_cluster: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """A product type, then an item, each by importance resampling; returns items and scores."""
    n = users.size
    items = np.empty(n, dtype=np.int64)
    scores = np.empty(n, dtype=np.float32)
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        taste = w.user_taste[users[lo:hi]]
        cand = by_category[
            categories[lo:hi, None], rng.integers(0, by_category.shape[1], (hi - lo, p.CLUSTER_CANDIDATES))
        ]
        cluster, _ = _resample(rng, cand, w.cluster_centre, taste, p.CLUSTER_TEMPERATURE)
        cand = by_cluster[
            cluster[:, None], rng.integers(0, by_cluster.shape[1], (hi - lo, p.ITEM_CANDIDATES))
        ]
        items[lo:hi], scores[lo:hi] = _resample(rng, cand, w.item_emb, taste, p.ITEM_TEMPERATURE)
    return items, scores


def _resample(
    rng: np.random.Generator, cand: np.ndarray, emb: np.ndarray, taste: np.ndarray, temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """Keep one candidate per row with probability ∝ exp(taste · embedding / temperature)."""
    score = np.einsum("nkd,nd->nk", emb[cand], taste)
    weight = np.exp((score - score.max(axis=1, keepdims=True)) / temperature)
    cum = np.cumsum(weight, axis=1)
    u = rng.random(cand.shape[0]) * cum[:, -1]
    keep = np.minimum((cum < u[:, None]).sum(axis=1), cand.shape[1] - 1)
    rows = np.arange(cand.shape[0])
    return cand[rows, keep], score[rows, keep]
