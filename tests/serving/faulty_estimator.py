"""A test double for fault tests: a real fitted estimator that fails on a known share of inputs.

Pickled inside a registered model, so the ``conveyor serve`` process that loads it
must find this module (the fault tests put ``tests/serving`` on its PYTHONPATH). It is
deliberately not part of Conveyor's API.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class FailsOnMultiples:
    """``inner.predict_proba``, but raises for any row whose column ``column`` is a multiple of ``k``.

    Deterministic: requests numbered 1..n in that column fail exactly ``n // k`` times,
    however the server batches them (a failed batch is retried request by request).
    """

    def __init__(self, inner: Any, column: int, k: int) -> None:
        self.inner = inner
        self.column = column
        self.k = k

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        values = x[:, self.column]
        bad = np.isfinite(values) & (np.round(values) % self.k == 0)
        if bad.any():
            raise RuntimeError(f"injected fault: {int(bad.sum())} row(s) with a multiple of {self.k}")
        return np.asarray(self.inner.predict_proba(x))
