"""Interactions → a weighted user × item matrix, and the id maps and seen items recommenders keep.

Both recommenders (matrix factorisation and the popularity baseline) learn
from the same matrix and keep the same state beside their own: the user and
item ids in row/column order, the items each user has seen (CSR structure)
and the item popularity. That state is stored in formats that load without
unpickling (Parquet for ids, ``.npy`` for arrays).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from conveyor.errors import InputError

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "add_to_cart": 4.0, "purchase": 10.0}
WEIGHT_COLUMN = "weight"


@dataclass(frozen=True)
class InteractionColumns:
    """Which columns hold the user, the item, the event type and an explicit weight."""

    user: str = "user_id"
    item: str = "item_id"
    event: str | None = "event"
    weight: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"user": self.user, "item": self.item, "event": self.event, "weight": self.weight}


def interaction_weights(
    data: pl.DataFrame, columns: InteractionColumns, event_weights: Mapping[str, float]
) -> pl.Series:
    """One confidence weight per row: the weight column, else the event's weight, else 1."""
    weight_col = columns.weight or (WEIGHT_COLUMN if WEIGHT_COLUMN in data.columns else None)
    if weight_col is not None:
        if weight_col not in data.columns:
            raise InputError(f"weight column {weight_col!r} is not in the data")
        try:
            weights = data[weight_col].cast(pl.Float32)
        except pl.exceptions.PolarsError as exc:
            raise InputError(f"weight column {weight_col!r} is not numeric") from exc
        return weights.fill_null(0.0)
    if columns.event is not None and columns.event in data.columns:
        events = data[columns.event].cast(pl.String)
        unknown = sorted(set(events.drop_nulls().unique().to_list()) - set(event_weights))
        if unknown:
            raise InputError(
                f"event column {columns.event!r} has types without a weight: {unknown[:5]}; "
                f"add them to data.event_weights (known: {sorted(event_weights)})"
            )
        return events.replace_strict(dict(event_weights), default=0.0, return_dtype=pl.Float32)
    return pl.Series(WEIGHT_COLUMN, np.ones(data.height, dtype=np.float32))


@dataclass(frozen=True)
class InteractionMatrix:
    """Users × items confidence matrix with the ids of its rows and columns (sorted)."""

    users: pl.Series
    items: pl.Series
    matrix: sp.csr_matrix


def build_matrix(
    data: pl.DataFrame, columns: InteractionColumns, event_weights: Mapping[str, float]
) -> InteractionMatrix:
    """Sum the weights of repeated (user, item) pairs into a CSR matrix (float32)."""
    for name in (columns.user, columns.item):
        if name not in data.columns:
            raise InputError(f"interaction column {name!r} is not in the data (has {data.columns})")
    if data.height == 0:
        raise InputError("no interactions to learn from")
    frame = data.select(
        u=pl.col(columns.user), i=pl.col(columns.item), w=interaction_weights(data, columns, event_weights)
    ).drop_nulls(["u", "i"])
    # dense ranks follow the sorted order of the unique ids, so index j ↔ ids[j]
    coded = frame.select(
        (pl.col("u").rank("dense") - 1).cast(pl.Int64).alias("ui"),
        (pl.col("i").rank("dense") - 1).cast(pl.Int64).alias("ii"),
        pl.col("w"),
    )
    users = frame["u"].unique().sort().rename("id")
    items = frame["i"].unique().sort().rename("id")
    matrix = sp.csr_matrix(
        (coded["w"].to_numpy(), (coded["ui"].to_numpy(), coded["ii"].to_numpy())),
        shape=(users.len(), items.len()),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    return InteractionMatrix(users=users, items=items, matrix=matrix)


class IdIndex:
    """Id → position lookup that also accepts "123" for an integer id 123."""

    def __init__(self, ids: pl.Series) -> None:
        self.ids = ids
        self.values: list[Any] = ids.to_list()
        self._numeric = ids.dtype.is_integer()
        self._lookup: dict[Any, int] = {v: j for j, v in enumerate(self.values)}

    def get(self, key: int | str) -> int | None:
        found = self._lookup.get(key)
        if found is None and self._numeric and isinstance(key, str):
            try:
                found = self._lookup.get(int(key))
            except ValueError:
                return None
        return found

    def __len__(self) -> int:
        return len(self.values)

    def take(self, positions: Sequence[int] | np.ndarray) -> list[int | str]:
        return [self.values[int(p)] for p in positions]


def save_state(directory: Path, state: InteractionMatrix, popularity: np.ndarray) -> None:
    """Ids as Parquet, seen structure and popularity as ``.npy`` (no pickle)."""
    pl.DataFrame({"id": state.users}).write_parquet(directory / "users.parquet")
    pl.DataFrame({"id": state.items}).write_parquet(directory / "items.parquet")
    np.save(directory / "seen_indptr.npy", state.matrix.indptr.astype(np.int64))
    np.save(directory / "seen_indices.npy", state.matrix.indices.astype(np.int32))
    np.save(directory / "popularity.npy", popularity.astype(np.float64))


def load_state(directory: Path) -> tuple[InteractionMatrix, np.ndarray]:
    """The inverse of :func:`save_state` (the matrix keeps structure only, weights 1)."""
    try:
        users = pl.read_parquet(directory / "users.parquet")["id"]
        items = pl.read_parquet(directory / "items.parquet")["id"]
        indptr = np.load(directory / "seen_indptr.npy", allow_pickle=False)
        indices = np.load(directory / "seen_indices.npy", allow_pickle=False)
        popularity = np.load(directory / "popularity.npy", allow_pickle=False)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{directory}: unreadable recommender state ({exc})", path=str(directory)) from exc
    data = np.ones(indices.shape[0], dtype=np.float32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(users.len(), items.len()))
    return InteractionMatrix(users=users, items=items, matrix=matrix), popularity


def popularity_of(matrix: sp.csr_matrix) -> np.ndarray:
    """Item popularity: the summed confidence of its interactions."""
    return np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()


TOP_K_BLOCK = 256  # columns per block when bounding the k-th best score (see top_k)


def top_k(scores: np.ndarray, k: int, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the positions and scores of the ``k`` largest scores, best first.

    Ties resolve by position (lowest first), so the answer is reproducible. With
    ``labels`` (one integer per column), column j is reported as ``labels[j]``
    and ties resolve by label instead. A row with fewer than ``k`` usable
    (non-NaN) scores is padded with position 0 and score ``-inf`` — callers
    drop non-finite scores.

    Hand-written rather than ``np.argpartition`` over every row: on 50,000
    items that costs ~1.4 s per 1,024 users here (the old ``argpartition(-scores)``
    dominated ``train``'s scoring). Instead, the maxima of blocks of columns
    (one ``fmax.reduceat`` pass, no copy) give each row a threshold — the
    k-th largest block maximum, which at least k scores reach — and only the
    few blocks whose maximum reaches it are searched: ~20 ms for the same
    batch, with the same exact answer.
    """
    rows, n = scores.shape
    k = min(k, n)
    if k <= 0 or rows == 0:
        empty = np.empty((rows, 0))
        return empty.astype(np.int64), empty.astype(scores.dtype)
    width = min(TOP_K_BLOCK, max(1, n // (4 * k)))
    starts = np.arange(0, n, width)
    block_max = np.fmax.reduceat(scores, starts, axis=1) if width > 1 else scores
    block_max = np.where(np.isnan(block_max), -np.inf, block_max)  # NaN is never a top score
    blocks = block_max.shape[1]
    threshold = np.partition(block_max, blocks - k, axis=1)[:, blocks - k]
    # candidate blocks: those whose maximum reaches the row's threshold (NaN never does)
    sel_row, sel_block = np.nonzero(block_max >= threshold[:, None])
    cols = sel_block[:, None] * width + np.arange(width)
    inside = cols < n
    np.minimum(cols, n - 1, out=cols)
    values = scores[sel_row[:, None], cols]
    keep = inside & (values >= threshold[sel_row][:, None])
    cand_row = np.broadcast_to(sel_row[:, None], cols.shape)[keep]
    cand_col = cols[keep] if labels is None else labels[cols[keep]]
    cand_val = values[keep]
    order = np.lexsort((cand_col, -cand_val, cand_row))  # row, then best score, then position
    cand_row, cand_col, cand_val = cand_row[order], cand_col[order], cand_val[order]
    first = np.searchsorted(cand_row, np.arange(rows))
    rank = np.arange(cand_row.size) - first[cand_row]
    take = rank < k
    positions = np.zeros((rows, k), dtype=np.int64)
    best = np.full((rows, k), -np.inf, dtype=scores.dtype)
    positions[cand_row[take], rank[take]] = cand_col[take]
    best[cand_row[take], rank[take]] = cand_val[take]
    return positions, best


def seen_positions(matrix: sp.csr_matrix, row: int) -> np.ndarray:
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    return np.asarray(matrix.indices[start:end])
