"""The shop data generator: a simulated e-commerce world with planted tastes.

A :class:`ShopWorld` is drawn once from a :class:`ShopConfig` and its seed
(see ``_shop_world``): products in categories and hidden product types, with
prices and a Zipf-like base popularity; users with a segment (bargain /
regular / premium), an activity level and a hidden taste vector. An item's
appeal to a user is ``taste · embedding``.

:meth:`ShopWorld.simulate` turns the world into an event log (see
``_shop_sessions``). Every day is drawn from its own random stream (world
seed, date), so a window is exactly the concatenation of its days and
consecutive weeks continue each other. Sessions follow a weekly cycle
(weekend peak) and a daily one (evening peak); views are drawn ∝ popularity ×
exp(taste · embedding / temperature); views become add-to-carts more often
for liked and affordable items, and a session with carts checks out at its
segment's rate — so per session, purchases ≤ add-to-carts ≤ views.

:class:`ShopDrift` bends a simulation: a new category taking a share of
sessions, popularity partly re-drawn, prices multiplied, or a broken upstream
feed (nulls, garbage timestamps, negative prices).

:meth:`ShopWorld.click_probability` is the true chance that a user clicks a
recommended item, from the same planted tastes: an A/B test simulated with it
has a known true lift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from conveyor.data._shop_params import (
    BROKEN_SHARE,
    CLICK_INTERCEPT,
    CLICK_TASTE_SLOPE,
    DAY_WEIGHTS,
    GARBAGE_TIMESTAMPS,
)
from conveyor.data._shop_sessions import Catalogue, simulate_day
from conveyor.data._shop_world import (
    EVENTS,
    SEGMENTS,
    WorldArrays,
    draw_world,
    validate_config,
    validate_drift,
)
from conveyor.errors import UsageError

_EPOCH = date(1970, 1, 1)
_SESSION_DAY_STRIDE = 1_000_000_000  # session_id = date ordinal × stride + index within the day
_STREAM_EVENTS = 0x5E55  # random streams of events, a broken feed and a popularity drift are apart
_STREAM_BROKEN = 0xB0B
_STREAM_POPULARITY = 0x909


@dataclass(frozen=True)
class ShopConfig:
    """Size and seed of a simulated shop. Defaults give a demo-size world."""

    n_users: int = 2000
    n_items: int = 1000
    n_categories: int = 20
    taste_dim: int = 16
    seed: int = 0
    sessions_per_user_per_week: float = 3.0
    start: date = date(2026, 11, 2)


@dataclass(frozen=True)
class ShopDrift:
    """Ways to bend a simulation; all off by default.

    ``new_category``: a category absent from the world appears and takes a
    share of sessions. ``popularity_shift`` (0..1): how much of the item
    popularity is re-drawn. ``price_shift``: every price is multiplied by it.
    ``broken_feed``: nulls in ``user_id``/``item_id``, timestamps as strings
    with garbage among them, negative prices.
    """

    new_category: bool = False
    popularity_shift: float = 0.0
    price_shift: float = 1.0
    broken_feed: bool = False

    @property
    def active(self) -> bool:
        return self != ShopDrift()


class ShopWorld:
    """Users, products and their hidden tastes; see the module docstring."""

    def __init__(self, config: ShopConfig, arrays: WorldArrays) -> None:
        self.config = config
        self._w = arrays

    @classmethod
    def create(cls, config: ShopConfig | None = None) -> ShopWorld:
        """Draw a world from ``config`` (its seed fixes everything)."""
        config = config or ShopConfig()
        validate_config(config)
        return cls(config, draw_world(config))

    # -- the world as tables -----------------------------------------------------------
    @property
    def products(self) -> pl.DataFrame:
        """item_id (0..n_items-1), category, price, popularity (base share of views)."""
        return self.catalogue()

    def catalogue(self, drift: ShopDrift | None = None) -> pl.DataFrame:
        """The products as a simulation under ``drift`` sees them (new category, popularity, prices)."""
        drift = drift or ShopDrift()
        validate_drift(drift)
        w = self._w
        items = np.arange(w.item_logpop.size if drift.new_category else w.n_items)
        logpop = self._logpop(drift)[items]
        popularity = np.exp(logpop - logpop.max())
        return pl.DataFrame(
            {
                "item_id": pl.Series(items, dtype=pl.Int64),
                "category": _names(w.category_names, w.item_category[items]),
                "price": pl.Series(np.round(w.item_price[items] * drift.price_shift, 2), dtype=pl.Float64),
                "popularity": pl.Series(popularity / popularity.sum(), dtype=pl.Float64),
            }
        )

    @property
    def users(self) -> pl.DataFrame:
        """user_id (0..n_users-1), segment, activity (mean 1), taste (the hidden taste vector)."""
        w = self._w
        return pl.DataFrame(
            {
                "user_id": pl.Series(np.arange(self.config.n_users, dtype=np.int64)),
                "segment": _names(SEGMENTS.names, w.user_segment),
                "activity": pl.Series(w.user_activity, dtype=pl.Float64),
                "taste": pl.Series(w.user_taste, dtype=pl.Array(pl.Float32, self.config.taste_dim)),
            }
        )

    @property
    def category_names(self) -> tuple[str, ...]:
        """The world's categories, then the one a ``new_category`` drift adds."""
        return self._w.category_names

    @property
    def item_embeddings(self) -> np.ndarray:
        """The hidden item embeddings, one row per item id (new-category items included)."""
        return self._w.item_emb

    @property
    def user_tastes(self) -> np.ndarray:
        """The hidden user taste vectors, one row per user id."""
        return self._w.user_taste

    # -- the truth behind the data -------------------------------------------------------
    def taste_scores(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """The planted affinity ``taste · embedding``; ids broadcast against each other."""
        users = np.asarray(user_ids)
        items = np.asarray(item_ids)
        _check_ids("user_ids", users, self.config.n_users)
        _check_ids("item_ids", items, self._w.item_logpop.size)
        users, items = np.broadcast_arrays(users, items)
        tastes = self._w.user_taste[users].astype(np.float64)
        return np.asarray(np.einsum("...d,...d->...", tastes, self._w.item_emb[items].astype(np.float64)))

    def click_probability(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """True probability (0..1) that each user clicks the paired item if recommended.

        ``user_ids`` and ``item_ids`` broadcast against each other (a (n, 1) array
        of users against a (n, k) array of recommendations works). Item ids of
        the ``new_category`` drift are accepted.
        """
        score = self.taste_scores(user_ids, item_ids)
        return np.asarray(1.0 / (1.0 + np.exp(-(CLICK_INTERCEPT + CLICK_TASTE_SLOPE * score))))

    # -- simulation ------------------------------------------------------------------------
    def simulate(
        self,
        start: date | None = None,
        days: int = 7,
        *,
        drift: ShopDrift | None = None,
        seed: int | None = None,
    ) -> pl.DataFrame:
        """The event log of ``days`` days from ``start`` (default: the config's start).

        Columns: user_id, item_id (Int64), timestamp (Datetime[us], naive UTC),
        event (view | add_to_cart | purchase), price (Float64), category,
        session_id (Int64), sorted by time. Each day has its own random stream,
        so a window is the concatenation of its days. ``seed`` picks other
        streams for the same world. With ``drift.broken_feed`` the columns break
        on purpose (nulls; timestamp becomes a string column with garbage).
        """
        if isinstance(start, datetime):
            start = start.date()
        start = self.config.start if start is None else start
        if not isinstance(start, date):
            raise UsageError(f"start must be a date, got {start!r}")
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise UsageError(f"days must be a whole number ≥ 0, got {days!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise UsageError(f"seed must be a whole number ≥ 0, got {seed!r}")
        drift = drift or ShopDrift()
        validate_drift(drift)
        catalogue = Catalogue.build(self._w, self._logpop(drift), drift.new_category)
        streams = [] if seed is None else [seed]
        parts = []
        for offset in range(days):  # one stream per day: a window is the concatenation of its days
            day = start + timedelta(days=offset)
            day_number = (day - _EPOCH).days
            rng = np.random.default_rng([self.config.seed, _STREAM_EVENTS, day.toordinal(), *streams])
            weight = DAY_WEIGHTS[day.weekday()] / DAY_WEIGHTS.mean()
            parts.append(
                simulate_day(
                    self._w,
                    catalogue,
                    rng,
                    day_start_us=day_number * 86_400_000_000,
                    session_base=day.toordinal() * _SESSION_DAY_STRIDE,
                    rate=self.config.sessions_per_user_per_week / 7.0 * weight,
                )
            )
        frame = self._to_frame(parts, drift.price_shift)
        if drift.broken_feed:
            rng = np.random.default_rng([self.config.seed, _STREAM_BROKEN, start.toordinal(), *streams])
            frame = break_feed(frame, rng)
        return frame

    # -- internals -------------------------------------------------------------------------
    def _logpop(self, drift: ShopDrift) -> np.ndarray:
        """Base log-popularity of every item, partly re-drawn by a popularity drift."""
        logpop = self._w.item_logpop
        if drift.popularity_shift > 0:
            # A fixed permutation per world: consecutive drifted weeks agree on
            # which items rose and which fell.
            n = self._w.n_items
            perm = np.random.default_rng([self.config.seed, _STREAM_POPULARITY]).permutation(n)
            base = logpop[:n]
            shifted = (1.0 - drift.popularity_shift) * base + drift.popularity_shift * base[perm]
            logpop = np.concatenate([shifted, logpop[n:]])
        return logpop

    def _to_frame(self, parts: list[dict[str, np.ndarray]], price_shift: float) -> pl.DataFrame:
        def column(key: str) -> np.ndarray:
            return np.concatenate([part[key] for part in parts]) if parts else np.empty(0, dtype=np.int64)

        w = self._w
        items = column("item").astype(np.int64)
        frame = pl.DataFrame(
            {
                "user_id": pl.Series(column("user"), dtype=pl.Int64),
                "item_id": pl.Series(items, dtype=pl.Int64),
                "timestamp": pl.Series(column("ts"), dtype=pl.Int64).cast(pl.Datetime("us")),
                "event": pl.Series(column("event"), dtype=pl.Int64).replace_strict(
                    list(range(len(EVENTS))), list(EVENTS), return_dtype=pl.String
                ),
                "price": pl.Series(np.round(w.item_price[items] * price_shift, 2), dtype=pl.Float64),
                "category": _names(w.category_names, w.item_category[items]),
                "session_id": pl.Series(column("session"), dtype=pl.Int64),
                "_seq": pl.Series(column("seq"), dtype=pl.Int64),
            }
        )
        return frame.sort(["timestamp", "session_id", "_seq"]).drop("_seq")

    def __repr__(self) -> str:
        c = self.config
        return f"ShopWorld(n_users={c.n_users}, n_items={c.n_items}, seed={c.seed})"


def _names(names: tuple[str, ...], codes: np.ndarray) -> pl.Series:
    return pl.Series(names, dtype=pl.String).gather(pl.Series(codes.astype(np.int64)))


def _check_ids(name: str, ids: np.ndarray, size: int) -> None:
    if ids.size == 0:
        return
    if not np.issubdtype(ids.dtype, np.integer):
        raise UsageError(f"{name} must be integer ids, got dtype {ids.dtype}")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= size:
        raise UsageError(f"{name} must lie in 0..{size - 1}, got values in {low}..{high}")


def break_feed(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """What a broken upstream export looks like: nulls, garbage timestamps, negative prices."""
    n = frame.height
    null_user = rng.random(n) < BROKEN_SHARE
    null_item = rng.random(n) < BROKEN_SHARE
    negative = rng.random(n) < BROKEN_SHARE
    garbage = rng.random(n) < BROKEN_SHARE
    if n:  # at least one of each, so that even a tiny broken frame is visibly broken
        null_user[0] = null_item[min(1, n - 1)] = negative[min(2, n - 1)] = garbage[min(3, n - 1)] = True
    junk = np.array(GARBAGE_TIMESTAMPS)[rng.integers(0, len(GARBAGE_TIMESTAMPS), n)]
    return frame.with_columns(
        pl.when(pl.Series(null_user)).then(None).otherwise(pl.col("user_id")).alias("user_id"),
        pl.when(pl.Series(null_item)).then(None).otherwise(pl.col("item_id")).alias("item_id"),
        pl.when(pl.Series(garbage))
        .then(pl.Series(junk, dtype=pl.String))
        .otherwise(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f"))
        .alias("timestamp"),
        pl.when(pl.Series(negative)).then(-pl.col("price")).otherwise(pl.col("price")).alias("price"),
    )


__all__ = ["ShopConfig", "ShopDrift", "ShopWorld"]
