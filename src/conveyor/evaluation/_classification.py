"""Classification metrics for real class balance (scikit-learn's definitions).

Binary problems score F1, ROC AUC and average precision (PR-AUC) for the
*positive* class: the configured one (``evaluation.positive_class``), else the
minority class of the held-out labels — the class a rare-event model is for.
``f1_macro`` and ``balanced_accuracy`` weigh every class equally, so a model
that predicts the majority class for every row scores 0.5 balanced accuracy
and 0 positive-class F1 however rare the positive class is. Multi-class
problems use the macro average of F1, one-vs-rest ROC AUC and average
precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "f1_macro",
    "roc_auc",
    "average_precision",
    "log_loss",
)
MINORITY_WARNING_SHARE = 0.10  # below this share of rows the minority class gets a warning


def encode_labels(y_true: Sequence[Any], classes: Sequence[Any]) -> np.ndarray:
    """Labels → their column in ``predict_proba`` (-1 for a label the model never saw)."""
    code = {c: j for j, c in enumerate(classes)}
    return np.asarray([code.get(v, -1) for v in y_true], dtype=np.int64)


def positive_column(y: np.ndarray, n_classes: int, configured: int | None = None) -> int:
    """The positive class's column: ``configured``, else the rarest class in ``y`` (ties: the later)."""
    if configured is not None:
        return configured
    counts = np.bincount(y[y >= 0], minlength=n_classes)
    rarest = counts.min()
    return int(np.flatnonzero(counts == rarest)[-1])  # binary ties: 1 / True / "yes", as before


def _threshold_metric(
    metric: str, y: np.ndarray, predicted: np.ndarray, n_classes: int, positive: int
) -> float:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    labels = list(range(n_classes))
    if metric == "accuracy":
        return float(accuracy_score(y, predicted))
    if metric == "balanced_accuracy":
        known = y >= 0
        return float(balanced_accuracy_score(y[known], predicted[known])) if known.any() else math.nan
    if metric == "f1" and n_classes == 2:
        return float(f1_score(y, predicted, pos_label=positive, zero_division=0.0))
    return float(f1_score(y, predicted, labels=labels, average="macro", zero_division=0.0))


def _ranking_metric(metric: str, y: np.ndarray, proba: np.ndarray, positive: int) -> float:
    from sklearn.metrics import average_precision_score, roc_auc_score

    n_classes = proba.shape[1]
    known = y >= 0
    if np.unique(y[known]).size < 2:
        return math.nan  # undefined with a single class in the test set
    if n_classes == 2:
        truth, scores = (y[known] == positive).astype(np.int64), proba[known, positive]
        fn = roc_auc_score if metric == "roc_auc" else average_precision_score
        return float(fn(truth, scores))
    p = proba[known] / proba[known].sum(axis=1, keepdims=True)
    if metric == "roc_auc":
        return float(roc_auc_score(y[known], p, multi_class="ovr", labels=list(range(n_classes))))
    onehot = np.eye(n_classes)[y[known]]
    present = onehot.sum(axis=0) > 0
    return float(average_precision_score(onehot[:, present], p[:, present], average="macro"))


def classification_score(metric: str, y: np.ndarray, proba: np.ndarray, positive: int | None = None) -> float:
    """One metric from coded labels ``y`` (0..k-1, -1 unknown) and probabilities (n × k).

    ``positive`` is the positive class's column (binary); None: the rarest class in ``y``.
    """
    from sklearn.metrics import log_loss

    n_classes = proba.shape[1]
    pos = positive_column(y, n_classes, positive) if positive is None else positive
    if metric in ("accuracy", "balanced_accuracy", "f1", "f1_macro"):
        if not y.size:
            return math.nan
        return _threshold_metric(metric, y, np.argmax(proba, axis=1), n_classes, pos)
    if metric in ("roc_auc", "average_precision"):
        return _ranking_metric(metric, y, proba, pos)
    if metric == "log_loss":
        known = y >= 0
        if not known.any():
            return math.nan
        p = np.clip(proba[known], 1e-15, 1.0)
        p = p / p.sum(axis=1, keepdims=True)  # float32 boosters sum to 1 only up to rounding
        return float(log_loss(y[known], p, labels=list(range(n_classes))))
    raise KeyError(metric)


def classification_scores(y: np.ndarray, proba: np.ndarray, positive: int | None = None) -> dict[str, float]:
    """All of :data:`CLASSIFICATION_METRICS`."""
    pos = positive_column(y, proba.shape[1], positive)
    return {m: classification_score(m, y, proba, pos) for m in CLASSIFICATION_METRICS}


def minority_share(y: np.ndarray, n_classes: int) -> float:
    """Share of the rarest class among the known labels (nan without labels)."""
    known = y[y >= 0]
    if not known.size:
        return math.nan
    return float(np.bincount(known, minlength=n_classes).min() / known.size)
