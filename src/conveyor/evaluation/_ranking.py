"""Ranking metrics at k with binary relevance: precision, recall, NDCG, MAP, catalogue coverage.

Written out here rather than taken from scikit-learn: ``sklearn.metrics.ndcg_score``
needs a dense users × items relevance matrix (10,000 users × 50,000 items is
4 GB) and has no precision/recall/MAP at k for top-k lists. The definitions
are the usual ones (as in ``implicit.evaluation`` and RecBole):

- precision@k = hits in the top k / k
- recall@k    = hits in the top k / number of relevant items
- NDCG@k      = Σ_{hits at rank r} 1/log2(r + 1)  /  Σ_{r=1}^{min(k, relevant)} 1/log2(r + 1)
- MAP@k       = Σ_{hits at rank r} precision@r  /  min(k, relevant)
- coverage    = distinct items recommended to anyone / catalogue size

Users without any relevant item are left out (they carry no signal).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

RANKING_METRICS = ("precision", "recall", "ndcg", "map")


def metric_name(metric: str, k: int) -> str:
    return f"{metric}_at_{k}"


@dataclass(frozen=True)
class RankingScores:
    """Per-user values of each metric (aligned with ``users``) and the coverage."""

    k: int
    users: list[Hashable]
    per_user: dict[str, np.ndarray]
    coverage: float

    def summary(self) -> dict[str, float]:
        out = {metric_name(m, self.k): float(np.mean(v)) if v.size else 0.0 for m, v in self.per_user.items()}
        out["coverage"] = self.coverage
        return out


@lru_cache(maxsize=8)
def _discounts(k: int) -> tuple[list[float], list[float]]:
    """1/log2(r + 1) for ranks 1..k, and its running sums (the ideal DCG of 1..k relevant items)."""
    gains = [1.0 / math.log2(r + 1) for r in range(1, k + 1)]
    return gains, [0.0, *itertools.accumulate(gains)]


def user_scores(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> dict[str, float]:
    """The four metrics for one user's ranked list against their relevant items.

    Plain Python on purpose: a list of at most k items is ~10× quicker this way than
    through NumPy's per-call overhead, and ``train`` scores 10,000 users twice.
    """
    gains, ideal_dcg = _discounts(k)
    n_relevant = len(relevant)
    dcg = 0.0
    precision_sum = 0.0
    n_hits = 0
    for rank, item in enumerate(itertools.islice(recommended, k), start=1):
        if item in relevant:
            n_hits += 1
            dcg += gains[rank - 1]
            precision_sum += n_hits / rank
    ideal = min(k, n_relevant)
    idcg = ideal_dcg[ideal]
    return {
        "precision": n_hits / k,
        "recall": n_hits / n_relevant if n_relevant else 0.0,
        "ndcg": dcg / idcg if idcg else 0.0,
        "map": precision_sum / ideal if ideal else 0.0,
    }


def ranking_scores(
    users: Sequence[Hashable],
    recommended: Sequence[Sequence[Hashable]],
    relevant: Sequence[Collection[Hashable]],
    *,
    k: int,
    catalogue_size: int,
) -> RankingScores:
    """Metrics for each user with at least one relevant item, and the catalogue coverage."""
    kept: list[Hashable] = []
    values: dict[str, list[float]] = {m: [] for m in RANKING_METRICS}
    shown: set[Hashable] = set()
    for user, recs, rel in zip(users, recommended, relevant, strict=True):
        shown.update(itertools.islice(recs, k))
        if not rel:
            continue
        kept.append(user)
        for name, value in user_scores(recs, rel, k).items():
            values[name].append(value)
    return RankingScores(
        k=k,
        users=kept,
        per_user={m: np.asarray(v, dtype=np.float64) for m, v in values.items()},
        coverage=len(shown) / catalogue_size if catalogue_size else 0.0,
    )
