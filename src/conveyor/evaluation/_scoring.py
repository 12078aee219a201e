"""A model on a held-out set: its metrics, and what a paired comparison needs.

Two models evaluated on the same :class:`HoldoutSet` can be compared unit by
unit (the same users, the same rows) with :func:`paired_difference`, a
bootstrap of the difference — the right comparison for small test sets,
where two point values differ by noise alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from conveyor.errors import InputError
from conveyor.evaluation._classification import (
    CLASSIFICATION_METRICS,
    classification_score,
    classification_scores,
    encode_labels,
    minority_share,
    positive_column,
)
from conveyor.evaluation._ranking import RANKING_METRICS, metric_name, ranking_scores
from conveyor.models import Classifier, Model, Recommender

LOWER_IS_BETTER = frozenset({"log_loss"})
BOOTSTRAP_RESAMPLES = 1000


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class HoldoutSet:
    """Held-out data: relevant items per user (recommender) or labelled rows (classifier)."""

    kind: str
    users: list[Hashable] = field(default_factory=list)
    relevant: list[set[Hashable]] = field(default_factory=list)
    rows: pl.DataFrame | None = None
    target: str | None = None
    k: int = 10
    positive_class: Any = None  # classifier: the configured positive label (None: the minority class)

    @classmethod
    def from_truth(cls, truth: pl.DataFrame, *, k: int, max_users: int, seed: int) -> HoldoutSet:
        """Relevant items per user from (user, item) pairs; at most ``max_users`` users, seeded."""
        user_col, item_col = truth.columns[:2]
        grouped = truth.group_by(user_col).agg(pl.col(item_col).unique()).sort(user_col)
        if grouped.height > max_users:
            keep = np.sort(np.random.default_rng(seed).choice(grouped.height, max_users, replace=False))
            grouped = grouped[keep]
        return cls(
            kind="recommender",
            users=grouped[user_col].to_list(),
            relevant=[set(items) for items in grouped[item_col].to_list()],
            k=k,
        )

    @classmethod
    def from_rows(cls, rows: pl.DataFrame, *, target: str, positive_class: Any = None) -> HoldoutSet:
        if target not in rows.columns:
            raise InputError(f"target column {target!r} is not in the test rows")
        return cls(kind="classifier", rows=rows, target=target, positive_class=positive_class)

    @property
    def pairs(self) -> int:
        """Recommender: (user, item) pairs to find; classifier: rows."""
        return sum(len(r) for r in self.relevant) if self.kind == "recommender" else self.size

    @property
    def size(self) -> int:
        return (
            len(self.users)
            if self.kind == "recommender"
            else (self.rows.height if self.rows is not None else 0)
        )


@dataclass(frozen=True)
class Scored:
    """Metrics of one model on one test set, plus the per-unit values behind them."""

    metrics: dict[str, float]
    units: int
    statistic: Callable[[str, np.ndarray], float]  # metric, unit indices → value on that resample
    info: dict[str, Any] = field(default_factory=dict)  # e.g. the positive class and its share
    per_unit: dict[str, np.ndarray] = field(default_factory=dict)  # metrics that are a mean over units

    def on(self, metric: str, idx: np.ndarray) -> float:
        return self.statistic(metric, idx)


def score(model: Model, test: HoldoutSet) -> Scored:
    """Compute the metrics of ``model`` on ``test``."""
    if isinstance(model, Recommender) and test.kind == "recommender":
        return _score_recommender(model, test)
    if isinstance(model, Classifier) and test.kind == "classifier":
        return _score_classifier(model, test)
    raise InputError(f"a {model.kind} cannot be scored on a {test.kind} test set")


def _user_id(value: Hashable) -> int | str:
    return value if isinstance(value, int | str) else str(value)


def _score_recommender(model: Recommender, test: HoldoutSet) -> Scored:
    recs = model.recommend([_user_id(u) for u in test.users], test.k, exclude_seen=True)
    catalogue = int(getattr(model, "n_items", 0)) or 1
    result = ranking_scores(
        test.users, [r.items for r in recs], test.relevant, k=test.k, catalogue_size=catalogue
    )
    per_user = {metric_name(m, test.k): result.per_user[m] for m in RANKING_METRICS}

    def statistic(metric: str, idx: np.ndarray) -> float:
        if metric not in per_user:
            raise InputError(f"metric {metric!r} has no per-user values; use one of {sorted(per_user)}")
        return float(np.mean(per_user[metric][idx]))

    info = {"users": len(result.users), "pairs": sum(len(r) for r in test.relevant)}
    return Scored(
        metrics=result.summary(), units=len(result.users), statistic=statistic, info=info, per_unit=per_user
    )


def _score_classifier(model: Classifier, test: HoldoutSet) -> Scored:
    if test.rows is None or test.target is None:
        raise InputError("a classifier test set needs rows and a target column")
    proba = model.predict_proba(test.rows)
    classes = list(model.classes)
    y = encode_labels(test.rows[test.target].to_list(), classes)
    configured = None
    if test.positive_class is not None:
        matches = [
            j for j, c in enumerate(classes) if c == test.positive_class or str(c) == str(test.positive_class)
        ]
        if not matches:
            raise InputError(
                f"evaluation.positive_class {test.positive_class!r} is not a class of the model ({classes})"
            )
        configured = matches[0]
    positive = positive_column(y, len(classes), configured)

    def statistic(metric: str, idx: np.ndarray) -> float:
        if metric not in CLASSIFICATION_METRICS:
            raise InputError(f"unknown metric {metric!r}; use one of {list(CLASSIFICATION_METRICS)}")
        return classification_score(metric, y[idx], proba[idx], positive)

    info = {"positive_class": classes[positive], "minority_share": minority_share(y, len(classes))}
    return Scored(
        metrics=classification_scores(y, proba, positive), units=y.size, statistic=statistic, info=info
    )


@dataclass(frozen=True)
class Difference:
    """candidate − reference on the same units, with a bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    resamples: int
    units: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "resamples": self.resamples,
            "units": self.units,
        }


def paired_difference(
    metric: str,
    candidate: Scored,
    reference: Scored,
    *,
    confidence: float = 0.90,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Difference:
    """Percentile bootstrap of candidate − reference, resampling the shared units together.

    A 90 % two-sided interval gives one-sided 95 % bounds, which is what a
    "no worse than" decision uses.
    """
    from scipy.stats import bootstrap

    if candidate.units != reference.units:
        raise InputError("paired comparison needs both models scored on the same test set")
    n = candidate.units
    everything = np.arange(n)
    estimate = candidate.on(metric, everything) - reference.on(metric, everything)
    if n < 2:
        return Difference(estimate, math.nan, math.nan, confidence, 0, n)
    rng = np.random.default_rng(seed)
    if metric in candidate.per_unit and metric in reference.per_unit:
        # a mean over units: resampling the units together is resampling their differences,
        # which scipy does vectorised (one call instead of one per resample)
        delta = candidate.per_unit[metric] - reference.per_unit[metric]
        result = bootstrap(
            (delta,),
            np.mean,
            vectorized=True,
            n_resamples=resamples,
            confidence_level=confidence,
            method="percentile",
            rng=rng,
        )
    else:

        def diff(idx: np.ndarray) -> float:
            idx = idx.astype(np.int64)
            return candidate.on(metric, idx) - reference.on(metric, idx)

        result = bootstrap(
            (everything,),
            diff,
            vectorized=False,
            paired=True,
            n_resamples=resamples,
            confidence_level=confidence,
            method="percentile",
            rng=rng,
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Difference(float(estimate), low, high, confidence, resamples, n)
