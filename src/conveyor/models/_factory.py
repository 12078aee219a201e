"""The one place a model type from ``conveyor.yaml`` becomes a model object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.config import Engine, ModelType, Settings
from conveyor.errors import UsageError
from conveyor.extensions import require_extra
from conveyor.models._base import Model
from conveyor.models._baselines import PopularityRecommender, PriorClassifier
from conveyor.models._classifier import LightGBMModel, RandomForestModel, TabularClassifier, XGBoostModel
from conveyor.models._interactions import InteractionColumns
from conveyor.models._recommender import ImplicitRecommender
from conveyor.models._spark_als import SparkALSRecommender
from conveyor.models._spark_xgboost import SparkXGBoostModel

CLASSIFIERS: dict[ModelType, type[TabularClassifier]] = {
    ModelType.RANDOM_FOREST: RandomForestModel,
    ModelType.XGBOOST: XGBoostModel,
    ModelType.LIGHTGBM: LightGBMModel,
}
# the training library of each model type that is not in the core install, and its extra
LIBRARIES: dict[ModelType, tuple[str, str]] = {
    ModelType.ALS: ("implicit", "recommender"),
    ModelType.BPR: ("implicit", "recommender"),
    ModelType.XGBOOST: ("xgboost", "classifier"),
    ModelType.LIGHTGBM: ("lightgbm", "classifier"),
}
# the names the command line and conveyor.yaml use → the library's names
RECOMMENDER_ALIASES = {"embedding_dim": "factors", "epochs": "iterations"}


def interaction_columns(settings: Settings) -> InteractionColumns:
    cols = settings.data.columns
    return InteractionColumns(user=cols.user, item=cols.item, event=cols.event, weight=cols.weight)


def recommender_params(params: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """``embedding_dim``/``epochs`` (from the model section or the params) as factors/iterations."""
    out: dict[str, Any] = {"factors": settings.model.embedding_dim, "iterations": settings.model.epochs}
    for key, value in params.items():
        out[RECOMMENDER_ALIASES.get(key, key)] = value
    return out


def make_model(model_type: ModelType, params: Mapping[str, Any], settings: Settings) -> Model:
    """An unfitted model of ``model_type`` with ``params`` over the library defaults; ExtensionError
    in one line when its training library (an optional extra) is not installed."""
    if model_type in LIBRARIES:
        module, extra = LIBRARIES[model_type]
        require_extra(module, extra, f"model type {model_type.value}")
    seed = settings.model.seed
    if settings.model.engine is Engine.SPARK and model_type is ModelType.ALS:
        return SparkALSRecommender(
            params=recommender_params(params, settings),
            seed=seed,
            columns=interaction_columns(settings),
            event_weights=settings.data.event_weights,
            spark=settings.spark,
        )
    if model_type.is_recommender:
        return ImplicitRecommender(
            algorithm="als" if model_type is ModelType.ALS else "bpr",
            params=recommender_params(params, settings),
            seed=seed,
            columns=interaction_columns(settings),
            event_weights=settings.data.event_weights,
        )
    target = settings.data.target
    if not target:
        raise UsageError("data.target: a classifier needs the name of its label column")
    if settings.model.engine is Engine.SPARK and model_type is ModelType.XGBOOST:
        return SparkXGBoostModel(target=target, params=params, seed=seed, spark=settings.spark)
    return CLASSIFIERS[model_type](target=target, params=params, seed=seed)


def make_baseline(model_type: ModelType, settings: Settings) -> Model:
    """The baseline a model of ``model_type`` must beat: most popular items, or class priors."""
    if model_type.is_recommender:
        return PopularityRecommender(
            columns=interaction_columns(settings), event_weights=settings.data.event_weights
        )
    target = settings.data.target
    if not target:
        raise UsageError("data.target: a classifier needs the name of its label column")
    return PriorClassifier(target=target)
