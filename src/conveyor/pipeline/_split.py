"""Train/test splits: by time for the recommender, stratified for the classifier.

The recommender's default is a per-user temporal hold-out (each user's last
interactions, ``evaluation.split: per-user``); ``global-time`` holds out the
last ``model.holdout_days`` of the whole log instead.

The held-out part is written into the run folder (``test/``), so that
``evaluate`` scores the candidate, the baseline and the production model on
exactly the same users or rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from conveyor.config import Settings, SplitMethod
from conveyor.errors import InputError, UsageError
from conveyor.evaluation import HoldoutSet

TRUTH_FILE = "truth.parquet"
ROWS_FILE = "rows.parquet"
DESCRIPTION_FILE = "split.json"
_TS, _ROW, _RANK, _ELIGIBLE, _HELD = (f"__conveyor_{n}" for n in ("ts", "row", "rank", "eligible", "held"))


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    test: pl.DataFrame  # recommender: (user, item) pairs to find; classifier: labelled rows
    description: dict[str, object]

    def save(self, directory: Path, *, recommender: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.test.write_parquet(directory / (TRUTH_FILE if recommender else ROWS_FILE))
        (directory / DESCRIPTION_FILE).write_text(json.dumps(self.description, default=str))


def _timestamps(df: pl.DataFrame, column: str) -> pl.Expr:
    if column not in df.columns:
        raise InputError(f"timestamp column {column!r} is not in the data (has {df.columns})")
    dtype = df.schema[column]
    col = pl.col(column)
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return col.cast(pl.Datetime("us"))
    if dtype.is_integer():
        return pl.from_epoch(col, time_unit="s")
    if dtype == pl.String:
        return col.str.to_datetime(strict=False, time_unit="us")
    raise InputError(f"timestamp column {column!r} has type {dtype}, expected a date-time")


def _dated(df: pl.DataFrame, settings: Settings) -> tuple[pl.DataFrame, datetime]:
    """Rows with a usable timestamp (in ``__conveyor_ts``), cut to ``data.window_days``; the last time."""
    cols = settings.data.columns
    frame = df.with_columns(_timestamps(df, cols.timestamp).alias(_TS)).filter(pl.col(_TS).is_not_null())
    end = frame[_TS].max() if frame.height else None
    if not isinstance(end, datetime):
        raise InputError(f"timestamp column {cols.timestamp!r} has no usable values")
    window = settings.data.window_days
    if window is not None:
        frame = frame.filter(pl.col(_TS) > end - timedelta(days=window))
    return frame, end


def _truth(train: pl.DataFrame, test: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """(user, item) pairs of the held-out part that a model can be asked to find.

    Only users the model knows, and only items new to each user (seen ones are
    never recommended).
    """
    cols = settings.data.columns
    pairs = [cols.user, cols.item]
    seen = train.lazy().select(pairs)  # joined as is: deduplicating 4M training pairs first costs 2x
    return (
        test.lazy()
        .select(pairs)
        .unique()
        .join(seen.select(cols.user), on=cols.user, how="semi")
        .join(seen, on=pairs, how="anti")
        .sort(pairs)
        .collect()
    )


def split_by_time(df: pl.DataFrame, settings: Settings) -> Split:
    """Hold out the last ``model.holdout_days`` days of the whole log; what users found there is the truth."""
    cols = settings.data.columns
    frame, end = _dated(df, settings)
    cutoff = end - timedelta(days=settings.model.holdout_days)
    train = frame.filter(pl.col(_TS) <= cutoff)
    test = frame.filter(pl.col(_TS) > cutoff)
    if train.height == 0 or test.height == 0:
        start = frame[_TS].min()
        raise UsageError(
            f"model.holdout_days={settings.model.holdout_days} leaves "
            f"{'no training' if train.height == 0 else 'no held-out'} data "
            f"(the data spans {start!s} … {end})"
        )
    truth = _truth(train, test, settings)
    description: dict[str, object] = {
        "split": SplitMethod.GLOBAL_TIME.value,
        "holdout_days": settings.model.holdout_days,
        "cutoff": cutoff.isoformat(),
        "train_rows": train.height,
        "test_rows": test.height,
        "test_users": truth[cols.user].n_unique(),
        "test_pairs": truth.height,
    }
    return Split(train=train.drop(_TS), test=truth, description=description)


def split_per_user(df: pl.DataFrame, settings: Settings) -> Split:
    """Hold out each user's last interactions (leave-last-n or the last fraction), in time order.

    The standard temporal hold-out for recommenders (as in RecBole's ``LS``
    ordering and the leave-last-out protocol): every evaluated user has a
    past to train on and a future to find, whatever the span of the log.
    Users with fewer than ``evaluation.min_user_interactions`` interactions
    stay in training only and are counted. Ties in time keep the file's order.
    """
    cols = settings.data.columns
    ev = settings.evaluation
    frame, _ = _dated(df, settings)
    n = pl.len().over(cols.user)
    if ev.holdout_last_n is not None:
        held = pl.lit(ev.holdout_last_n, dtype=pl.Int64)
    else:  # at least one, and never the user's whole history
        held = (n.cast(pl.Float64) * ev.holdout_last_fraction).floor().cast(pl.Int64).clip(1, None)
    ranked = (
        frame.with_row_index(_ROW)
        .sort([cols.user, _TS, _ROW])
        .with_columns(
            pl.int_range(pl.len()).over(cols.user).alias(_RANK),
            (n >= ev.min_user_interactions).alias(_ELIGIBLE),
            held.alias(_HELD),
        )
    )
    is_test = pl.col(_ELIGIBLE) & (pl.col(_RANK) >= n - pl.col(_HELD))
    helpers = [_TS, _ROW, _RANK, _ELIGIBLE, _HELD]
    train = ranked.filter(~is_test).sort(_ROW).drop(helpers)
    test = ranked.filter(is_test).drop(helpers)
    users = ranked.group_by(cols.user).agg(pl.col(_ELIGIBLE).first())
    short = int(users.height - users[_ELIGIBLE].sum())
    if test.height == 0:
        raise UsageError(
            f"evaluation.min_user_interactions={ev.min_user_interactions}: no user has that many "
            f"interactions ({users.height} users), so nothing can be held out"
        )
    truth = _truth(train, test, settings)
    test_users = truth[cols.user].n_unique()
    description: dict[str, object] = {
        "split": SplitMethod.PER_USER.value,
        "holdout": (
            f"last {ev.holdout_last_n}"
            if ev.holdout_last_n is not None
            else f"last {ev.holdout_last_fraction * 100:g} % (at least 1)"
        ),
        "min_user_interactions": ev.min_user_interactions,
        "train_rows": train.height,
        "test_rows": test.height,
        "users": users.height,
        "users_too_short": short,  # kept out of the test set: too little history
        "users_nothing_new": int(test[cols.user].n_unique() - test_users),  # held out only seen items
        "test_users": test_users,
        "test_pairs": truth.height,
    }
    return Split(train=train, test=truth, description=description)


def split_notes(description: dict[str, object]) -> list[str]:
    """One line saying how the recommender's held-out set was made and who is in it."""
    if description.get("split") != SplitMethod.PER_USER.value:
        if description.get("split") == SplitMethod.GLOBAL_TIME.value:
            return [
                f"held out the last {description['holdout_days']} days of the log: "
                f"{description['test_users']:,} users, {description['test_pairs']:,} pairs to find"
            ]
        return []
    return [
        f"held out each user's {description['holdout']} interactions: {description['test_users']:,} users, "
        f"{description['test_pairs']:,} pairs to find; {description['users_too_short']:,} users with fewer "
        f"than {description['min_user_interactions']} interactions train only"
    ]


def split_interactions(df: pl.DataFrame, settings: Settings) -> Split:
    """The recommender split ``evaluation.split`` names."""
    if settings.evaluation.split is SplitMethod.GLOBAL_TIME:
        return split_by_time(df, settings)
    return split_per_user(df, settings)


def split_stratified(df: pl.DataFrame, settings: Settings) -> Split:
    """A seeded hold-out of ``model.test_size`` with the class shares kept (when every class can)."""
    from sklearn.model_selection import train_test_split

    target = settings.data.target
    if not target:
        raise UsageError("data.target: a classifier needs the name of its label column")
    if target not in df.columns:
        raise InputError(f"target column {target!r} is not in the data (has {df.columns})")
    frame = df.filter(pl.col(target).is_not_null())
    labels = frame[target].to_numpy()
    counts = frame[target].value_counts()["count"].to_list()
    smallest = min(counts) if counts else 0
    stratify = labels if smallest >= 2 else None
    try:
        train_idx, test_idx = train_test_split(
            np.arange(frame.height),
            test_size=settings.model.test_size,
            random_state=settings.model.seed,
            stratify=stratify,
        )
    except ValueError as exc:
        raise UsageError(f"model.test_size={settings.model.test_size}: cannot split: {exc}") from exc
    train_idx.sort()
    test_idx.sort()
    description: dict[str, object] = {
        "split": "stratified" if stratify is not None else "random (a class has a single row)",
        "test_size": settings.model.test_size,
        "train_rows": int(train_idx.size),
        "test_rows": int(test_idx.size),
    }
    return Split(train=frame[train_idx], test=frame[test_idx], description=description)


def load_test_set(directory: Path, settings: Settings, *, recommender: bool) -> HoldoutSet:
    """The held-out set a run saved, as the evaluation module scores it."""
    path = directory / (TRUTH_FILE if recommender else ROWS_FILE)
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: unreadable held-out set ({exc})", path=str(path)) from exc
    if recommender:
        return HoldoutSet.from_truth(
            frame, k=settings.model.k, max_users=settings.model.eval_users, seed=settings.model.seed
        )
    return HoldoutSet.from_rows(
        frame, target=str(settings.data.target), positive_class=settings.evaluation.positive_class
    )


def load_split_description(directory: Path) -> dict[str, object]:
    """How the run's held-out set was made (``{}`` for runs saved before it was recorded)."""
    try:
        raw = json.loads((directory / DESCRIPTION_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}
