"""ALS on Apache Spark (``model.engine: spark``), saved as the Java-free ALS flavour serving loads.

Spark MLlib's ALS (implicit preferences) learns the factors; everything else
is :class:`ImplicitRecommender`'s: the same interaction matrix (ids, seen
items, popularity) is built from the same rows, and :meth:`save` writes an
``ImplicitRecommender`` — the manifest names that class, the factors are
``.npy`` files — so ``conveyor serve``, evaluation and the registry load it
without PySpark and without a JVM.

Parameters map one to one: ``factors`` → ``rank``, ``iterations`` →
``maxIter``, ``regularization`` → ``regParam``, ``alpha`` → ``alpha``. The two
libraries weigh them differently — MLlib scales the regularisation by each
user's (item's) number of interactions and uses confidence 1 + α·w where
implicit uses α·w — so the same numbers give close, not equal, models
(tests/spark/test_spark_als.py bounds the difference on planted tastes).

The confidence-weighted (user, item) pairs reach Spark as an Arrow table
through the driver (``createDataFrame``), so a cluster needs no shared file
system to see them; the factors come back through Arrow too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import polars as pl

from conveyor.config import SparkSection
from conveyor.errors import UsageError
from conveyor.models._interactions import InteractionColumns
from conveyor.models._recommender import ImplicitRecommender

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession


class SparkALSRecommender(ImplicitRecommender):
    """Implicit-feedback ALS fitted by Spark MLlib; saved and served as :class:`ImplicitRecommender`."""

    engine = "spark"

    def __init__(
        self,
        *,
        params: Mapping[str, Any] | None = None,
        seed: int = 42,
        columns: InteractionColumns | None = None,
        event_weights: Mapping[str, float] | None = None,
        spark: SparkSection | None = None,
    ) -> None:
        super().__init__(
            algorithm="als", params=params, seed=seed, columns=columns, event_weights=event_weights
        )
        self.spark = spark or SparkSection()

    def fit(self, data: pl.DataFrame) -> Self:
        from conveyor.spark import preflight, spark_session

        params = self.effective_params()
        preflight(self.spark)  # PySpark, Java, the master: one line before any work
        state = self._learn_matrix(data)
        coo = state.matrix.tocoo()
        pairs = pl.DataFrame(
            {
                "user": coo.row.astype(np.int32),
                "item": coo.col.astype(np.int32),
                "confidence": coo.data.astype(np.float32),
            }
        )
        with spark_session(self.spark) as session:
            users, items = fit_als(
                session, pairs, params, seed=self.seed, n_users=self.n_users, n_items=self.n_items
            )
        self._set_factors(users, items)
        return self

    def as_implicit(self) -> ImplicitRecommender:
        """The same fitted model as the flavour serving loads (shares the learned arrays)."""
        self.check_fitted()
        twin = ImplicitRecommender(
            algorithm="als",
            params=self.params,
            seed=self.seed,
            columns=self.columns,
            event_weights=self.event_weights,
        )
        twin._share_state(self)
        twin._set_factors(self.user_factors_, self.item_factors_)
        return twin

    def save(self, directory: Path) -> None:
        """Written as an :class:`ImplicitRecommender`: loading it needs neither PySpark nor Java."""
        self.as_implicit().save(directory)


def _spark_frame(session: SparkSession, pairs: pl.DataFrame) -> SparkFrame:
    frame = session.createDataFrame(pairs.to_arrow())
    return frame.repartition(session.sparkContext.defaultParallelism)


def fit_als(
    session: SparkSession,
    pairs: pl.DataFrame,
    params: Mapping[str, Any],
    *,
    seed: int,
    n_users: int,
    n_items: int,
) -> tuple[np.ndarray, np.ndarray]:
    """MLlib ALS on (user, item, confidence) rows with dense integer ids; (user, item) factors."""
    from py4j.protocol import Py4JError
    from pyspark.errors import IllegalArgumentException, PySparkException
    from pyspark.ml.recommendation import ALS

    from conveyor.spark import java_message, spark_failure

    try:
        rank = int(params["factors"])
        als = ALS(
            rank=rank,
            maxIter=int(params["iterations"]),
            regParam=float(params["regularization"]),
            alpha=float(params["alpha"]),
            implicitPrefs=True,
            userCol="user",
            itemCol="item",
            ratingCol="confidence",
            seed=seed,
            numUserBlocks=session.sparkContext.defaultParallelism,
            numItemBlocks=session.sparkContext.defaultParallelism,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid als parameter for Spark: {exc}") from exc
    try:
        model = als.fit(_spark_frame(session, pairs))
        users = _factor_matrix(model.userFactors, n_users, rank)
        items = _factor_matrix(model.itemFactors, n_items, rank)
    except IllegalArgumentException as exc:
        raise UsageError(f"Spark's ALS refuses the model parameters: {java_message(exc)}") from exc
    except (PySparkException, Py4JError) as exc:
        raise spark_failure(exc, "ALS training") from exc
    return users, items


def _factor_matrix(factors: SparkFrame, n: int, rank: int) -> np.ndarray:
    """MLlib's (id, features) rows as an (n, rank) float32 matrix; rows without factors stay 0."""
    table = factors.toArrow()
    ids = table.column("id").to_numpy()
    values = table.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    out = np.zeros((n, rank), dtype=np.float32)
    out[ids] = np.asarray(values, dtype=np.float32).reshape(len(ids), rank)
    return out


__all__ = ["SparkALSRecommender", "fit_als"]
