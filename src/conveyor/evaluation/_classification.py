"""Classification metrics: accuracy, F1, ROC AUC, log loss (scikit-learn's definitions).

Binary problems score F1 and ROC AUC for the second class in sorted order
(the "positive" one: 1, True, "yes"); multi-class problems use the macro
average of F1 and one-vs-rest ROC AUC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")


def encode_labels(y_true: Sequence[Any], classes: Sequence[Any]) -> np.ndarray:
    """Labels → their column in ``predict_proba`` (-1 for a label the model never saw)."""
    code = {c: j for j, c in enumerate(classes)}
    return np.asarray([code.get(v, -1) for v in y_true], dtype=np.int64)


def classification_score(metric: str, y: np.ndarray, proba: np.ndarray) -> float:
    """One metric from coded labels ``y`` (0..k-1, -1 unknown) and probabilities (n × k)."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    n_classes = proba.shape[1]
    labels = list(range(n_classes))
    known = y >= 0
    if metric in ("accuracy", "f1"):
        if not y.size:
            return math.nan
        predicted = np.argmax(proba, axis=1)
        if metric == "accuracy":
            return float(accuracy_score(y, predicted))
        if n_classes == 2:
            return float(f1_score(y, predicted, pos_label=1, zero_division=0.0))
        return float(f1_score(y, predicted, labels=labels, average="macro", zero_division=0.0))
    if metric == "roc_auc":
        if np.unique(y[known]).size < 2:
            return math.nan  # undefined with a single class in the test set
        if n_classes == 2:
            return float(roc_auc_score(y[known], proba[known, 1]))
        p = proba[known] / proba[known].sum(axis=1, keepdims=True)
        return float(roc_auc_score(y[known], p, multi_class="ovr", labels=labels))
    if metric == "log_loss":
        if not known.any():
            return math.nan
        p = np.clip(proba[known], 1e-15, 1.0)
        p = p / p.sum(axis=1, keepdims=True)  # float32 boosters sum to 1 only up to rounding
        return float(log_loss(y[known], p, labels=labels))
    raise KeyError(metric)


def classification_scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """All of :data:`CLASSIFICATION_METRICS`."""
    return {m: classification_score(m, y, proba) for m in CLASSIFICATION_METRICS}
