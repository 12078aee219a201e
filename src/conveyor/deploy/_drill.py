"""Deployment drills: a recommender wrapper that injects errors and latency (not public API).

Rehearse a bad release on your own machine — register a
``FaultyRecommender`` around a real model and watch the canary analysis roll
it back — before a real one happens. The deployment tests use it: the
servers they start load it from its manifest, so it lives in Conveyor's
package (the loader imports Conveyor's classes and those of packages that
register a model type), in this private module and out of ``conveyor.deploy``'s
public names. Its faults are seeded: a loaded copy fails the same calls on
every run.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import polars as pl

from conveyor.errors import InputError
from conveyor.models import Recommendation, Recommender, load_model

INNER_DIR = "inner"


class FaultyRecommender(Recommender):
    """``inner``'s answers, but a share ``error_rate`` of calls fail and each call waits ``delay_ms``.

    ``healthy_calls``: the first calls of each loaded copy all succeed — a release
    that passes its smoke test and degrades under real traffic, the case the
    canary analysis exists for.
    """

    def __init__(
        self,
        inner: Recommender,
        *,
        error_rate: float = 0.0,
        delay_ms: float = 0.0,
        healthy_calls: int = 0,
        seed: int = 0,
    ) -> None:
        self.inner = inner
        self.error_rate = error_rate
        self.delay_ms = delay_ms
        self.healthy_calls = healthy_calls
        self.seed = seed
        self._calls = itertools.count(1)
        self._faults = random.Random(seed)  # which calls fail: the same on every run of a loaded copy

    def fit(self, data: pl.DataFrame) -> Self:
        self.inner.fit(data)
        return self

    def is_fitted(self) -> bool:
        return self.inner.is_fitted()

    def _save_files(self, directory: Path) -> dict[str, Any]:
        self.inner.save(directory / INNER_DIR)
        return {
            "error_rate": self.error_rate,
            "delay_ms": self.delay_ms,
            "healthy_calls": self.healthy_calls,
            "seed": self.seed,
        }

    @classmethod
    def _load_files(cls, directory: Path, manifest: dict[str, Any]) -> Self:
        inner = load_model(directory / INNER_DIR)
        if not isinstance(inner, Recommender):
            raise InputError(f"{directory / INNER_DIR}: the wrapped model is not a recommender")
        return cls(
            inner,
            error_rate=float(manifest["error_rate"]),
            delay_ms=float(manifest["delay_ms"]),
            healthy_calls=int(manifest.get("healthy_calls", 0)),
            seed=int(manifest.get("seed", 0)),
        )

    def knows_user(self, user_id: int | str) -> bool:
        return self.inner.knows_user(user_id)

    def popular(self, k: int) -> list[int | str]:
        return self.inner.popular(k)

    def recommend(
        self, user_ids: Sequence[int | str], k: int, *, exclude_seen: bool = True
    ) -> list[Recommendation]:
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        healthy = next(self._calls) <= self.healthy_calls
        if self.error_rate and not healthy and self._faults.random() < self.error_rate:
            raise ValueError(f"injected fault (deployment drill, error rate {self.error_rate:g})")
        return self.inner.recommend(user_ids, k, exclude_seen=exclude_seen)
