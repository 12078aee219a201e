"""Baselines every trained model must beat: most-popular items, class priors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl

from conveyor.errors import InputError, UsageError
from conveyor.models._base import Classifier, Recommendation
from conveyor.models._interactions import load_state, save_state, seen_positions
from conveyor.models._recommender import MatrixRecommender


class PopularityRecommender(MatrixRecommender):
    """Recommends the most popular items (by summed event weight) the user has not seen."""

    def fit(self, data: pl.DataFrame) -> Self:
        self._learn_matrix(data)
        self._scores_row_ = self.popularity_.astype(np.float32)
        return self

    def fit_like(self, fitted: MatrixRecommender) -> Self:
        """Learn from the matrix ``fitted`` built from the same data (saves building it again).

        Only when both read the data the same way (columns and event weights);
        otherwise :class:`UsageError` — call :meth:`fit` with the data instead.
        """
        fitted.check_fitted()
        if (fitted.columns, fitted.event_weights) != (self.columns, self.event_weights):
            raise UsageError("fit_like needs a recommender with the same columns and event weights")
        self._share_state(fitted)
        self._scores_row_ = self.popularity_.astype(np.float32)
        return self

    _scores_row_: np.ndarray

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self._scores_row_, (rows.shape[0], 1))

    def recommend(
        self, user_ids: Sequence[int | str], k: int, *, exclude_seen: bool = True
    ) -> list[Recommendation]:
        """The popular order, skipping what each user has seen: no per-user scoring needed."""
        self.check_fitted()
        if k <= 0:
            raise InputError(f"k must be a positive number of items, got {k}")
        out = []
        seen_matrix = self.state_.matrix
        for user_id in user_ids:
            row = self._users.get(user_id)
            if row is None:
                out.append(self._popular_for(user_id, k))
                continue
            # a few hundred positions at most: Python sets beat np.isin's per-call overhead
            seen = set(seen_positions(seen_matrix, row).tolist()) if exclude_seen else set()
            head = self._popular_order[: k + len(seen)].tolist()
            top = [p for p in head if p not in seen][:k]
            out.append(
                Recommendation(
                    user_id=user_id,
                    items=self._items.take(top),
                    scores=[float(v) for v in self._scores_row_[top]],
                    fallback=False,
                )
            )
        return out

    def _save_files(self, directory: Path) -> dict[str, Any]:
        save_state(directory, self.state_, self.popularity_)
        return self._common_manifest()

    @classmethod
    def _load_files(cls, directory: Path, manifest: dict[str, Any]) -> Self:
        model = cls(**cls._common_kwargs(manifest))
        state, popularity = load_state(directory)
        model._set_state(state, popularity)
        model._scores_row_ = popularity.astype(np.float32)
        return model


class PriorClassifier(Classifier):
    """Predicts the training class frequencies for every row (scikit-learn's "prior" dummy)."""

    def __init__(self, *, target: str) -> None:
        self.target = target

    classes_: list[Any]
    priors_: np.ndarray

    def is_fitted(self) -> bool:
        return hasattr(self, "priors_")

    def fit(self, data: pl.DataFrame) -> Self:
        if self.target not in data.columns:
            raise InputError(f"target column {self.target!r} is not in the data")
        counts = data[self.target].drop_nulls().value_counts(sort=False)
        counts = counts.sort(self.target)
        self.classes_ = counts[self.target].to_list()
        total = counts["count"].sum()
        self.priors_ = counts["count"].to_numpy().astype(np.float64) / float(total)
        return self

    @property
    def feature_names(self) -> list[str]:
        return []

    @property
    def feature_types(self) -> dict[str, str]:
        return {}

    @property
    def classes(self) -> list[Any]:
        self.check_fitted()
        return list(self.classes_)

    def predict_proba(self, rows: pl.DataFrame) -> np.ndarray:
        self.check_fitted()
        return np.tile(self.priors_, (rows.height, 1))

    def _save_files(self, directory: Path) -> dict[str, Any]:
        return {"target": self.target, "classes": self.classes_, "priors": self.priors_.tolist()}

    @classmethod
    def _load_files(cls, directory: Path, manifest: dict[str, Any]) -> Self:
        model = cls(target=manifest["target"])
        model.classes_ = list(manifest["classes"])
        model.priors_ = np.asarray(manifest["priors"], dtype=np.float64)
        return model
