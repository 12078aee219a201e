"""The XGBoost classifier fitted on Spark (``xgboost.spark``), saved as the local XGBoost flavour.

``xgboost.spark.SparkXGBClassifier`` (pure Python, ships with XGBoost, needs
PySpark only) trains the trees on ``spark.master``, one XGBoost worker per
Spark task in a barrier stage. Everything else is :class:`XGBoostModel`'s:
the same feature encoding and label coding, learned from the same rows on the
driver. :meth:`save` writes an ``XGBoostModel`` — the manifest names that
class, the booster is XGBoost's own UBJSON file — so ``conveyor serve``,
evaluation and the registry load it without PySpark and without a JVM.

Parameters pass through unchanged: the Spark estimator takes the scikit-learn
estimator's names (``n_estimators``, ``max_depth``, ``learning_rate``, …) and
refuses ``n_jobs`` / ``nthread`` (Spark's ``spark.task.cpus`` sets the
threads) with one line. ``num_workers`` (the number of XGBoost workers) is
the session's default parallelism unless the parameters set it. Distributed
``hist`` builds its histograms from each worker's quantile sketch, so the
trees are close to, not equal to, the local ones
(tests/spark/test_spark_xgboost.py bounds the difference in AUC).

The encoded rows reach Spark as an Arrow table through the driver
(``createDataFrame``), one float column per encoded feature, so a cluster
needs no shared file system to see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import polars as pl

from conveyor.config import SparkSection
from conveyor.errors import UsageError
from conveyor.models._classifier import XGBoostModel

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import SparkSession

LABEL = "label"


class SparkXGBoostModel(XGBoostModel):
    """XGBoost fitted by ``xgboost.spark``; saved and served as :class:`XGBoostModel`."""

    engine = "spark"

    def __init__(
        self,
        *,
        target: str,
        params: Mapping[str, Any] | None = None,
        seed: int = 42,
        exclude: tuple[str, ...] = (),
        spark: SparkSection | None = None,
    ) -> None:
        super().__init__(target=target, params=params, seed=seed, exclude=exclude)
        self.spark = spark or SparkSection()

    def fit(self, data: pl.DataFrame) -> Self:
        from conveyor.spark import preflight

        preflight(self.spark)  # PySpark, Java, the master: one line before any work
        return super().fit(data)

    def _fit_estimator(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> Any:
        from conveyor.spark import spark_session

        params = {"random_state": self.seed, "tree_method": "hist", **self.effective_params()}
        with spark_session(self.spark) as session:
            booster = fit_xgboost(session, x, y, params)
        return _classifier_of(booster)

    def as_local(self) -> XGBoostModel:
        """The same fitted model as the flavour serving loads (shares the learned state)."""
        self.check_fitted()
        twin = XGBoostModel(target=self.target, params=self.params, seed=self.seed, exclude=self.exclude)
        twin.encoding_ = self.encoding_
        twin.classes_ = self.classes_
        twin.estimator_ = self.estimator_
        return twin

    def save(self, directory: Path) -> None:
        """Written as an :class:`XGBoostModel`: loading it needs neither PySpark nor Java."""
        self.as_local().save(directory)


def _estimator(params: Mapping[str, Any], workers: int, features: list[str]) -> Any:
    """A SparkXGBClassifier over ``features`` and ``label``; UsageError for a parameter it refuses."""
    from xgboost.spark import SparkXGBClassifier

    settings = {**params, "num_workers": workers}
    try:
        return SparkXGBClassifier(features_col=features, label_col=LABEL, **settings)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid xgboost parameter for Spark: {exc}", parameters=sorted(params)) from exc


def fit_xgboost(session: SparkSession, x: np.ndarray, y: np.ndarray, params: Mapping[str, Any]) -> Any:
    """``SparkXGBClassifier`` on encoded rows ``x`` with class codes ``y``; the fitted Booster."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    from conveyor.spark import spark_failure

    try:
        workers = int(params.get("num_workers", session.sparkContext.defaultParallelism))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid xgboost parameter for Spark: num_workers: {exc}") from exc
    names = [f"f{j}" for j in range(x.shape[1])]
    estimator = _estimator(params, workers, names)
    table = pl.DataFrame(
        {**{name: x[:, j].astype(np.float32) for j, name in enumerate(names)}, LABEL: y.astype(np.int32)}
    ).to_arrow()
    try:
        frame = session.createDataFrame(table).repartition(workers)
        booster = estimator.fit(frame).get_booster()
    except ValueError as exc:  # the estimator's own checks of its parameters, at fit time
        raise UsageError(f"xgboost.spark refuses the model parameters: {exc}") from exc
    except (PySparkException, Py4JError) as exc:
        raise spark_failure(exc, "XGBoost training") from exc
    return booster


def _classifier_of(booster: Any) -> Any:
    """The Booster as the scikit-learn ``XGBClassifier`` the local flavour saves and loads."""
    from xgboost import XGBClassifier

    booster.feature_names = None  # the local flavour predicts from unnamed arrays
    booster.feature_types = None
    estimator = XGBClassifier()
    estimator.load_model(booster.save_raw("ubj"))
    return estimator


__all__ = ["SparkXGBoostModel", "fit_xgboost"]
