"""Train/test splits: by time for the recommender, stratified for the classifier.

The held-out part is written into the run folder (``test/``), so that
``evaluate`` scores the candidate, the baseline and the production model on
exactly the same users or rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from conveyor.config import Settings
from conveyor.errors import InputError, UsageError
from conveyor.evaluation import HoldoutSet

TRUTH_FILE = "truth.parquet"
ROWS_FILE = "rows.parquet"


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    test: pl.DataFrame  # recommender: (user, item) pairs to find; classifier: labelled rows
    description: dict[str, object]

    def save(self, directory: Path, *, recommender: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.test.write_parquet(directory / (TRUTH_FILE if recommender else ROWS_FILE))


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


def split_by_time(df: pl.DataFrame, settings: Settings) -> Split:
    """Hold out the last ``model.holdout_days`` days; what users found there is the truth."""
    cols = settings.data.columns
    ts = "__conveyor_ts"
    frame = df.with_columns(_timestamps(df, cols.timestamp).alias(ts)).filter(pl.col(ts).is_not_null())
    if frame.height == 0:
        raise InputError(f"timestamp column {cols.timestamp!r} has no usable values")
    end = frame[ts].max()
    if not isinstance(end, datetime):
        raise InputError(f"timestamp column {cols.timestamp!r} has no usable values")
    window = settings.data.window_days
    if window is not None:
        frame = frame.filter(pl.col(ts) > end - timedelta(days=window))
    cutoff = end - timedelta(days=settings.model.holdout_days)
    train = frame.filter(pl.col(ts) <= cutoff)
    test = frame.filter(pl.col(ts) > cutoff)
    if train.height == 0 or test.height == 0:
        start = frame[ts].min()
        raise UsageError(
            f"model.holdout_days={settings.model.holdout_days} leaves "
            f"{'no training' if train.height == 0 else 'no held-out'} data "
            f"(the data spans {start!s} … {end})"
        )
    pairs = [cols.user, cols.item]
    seen = train.lazy().select(pairs)  # joined as is: deduplicating 4M training pairs first costs 2x
    truth = (
        test.lazy()
        .select(pairs)
        .unique()
        .join(seen.select(cols.user), on=cols.user, how="semi")  # users the model knows
        .join(seen, on=pairs, how="anti")  # new items only: seen ones are never recommended
        .sort(pairs)
        .collect()
    )
    description: dict[str, object] = {
        "split": "time",
        "holdout_days": settings.model.holdout_days,
        "cutoff": cutoff.isoformat(),
        "train_rows": train.height,
        "test_rows": test.height,
        "test_users": truth[cols.user].n_unique(),
    }
    return Split(train=train.drop(ts), test=truth, description=description)


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
    return HoldoutSet.from_rows(frame, target=str(settings.data.target))
