"""The built-in model types, and the one place a ``model.type`` name becomes a model object.

The five objects below are registered in Conveyor's pyproject.toml under
``[project.entry-points."conveyor.model_types"]``; :func:`make_model` and :func:`make_baseline`
ask the registry, so a plugin's model type is built the same way (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from conveyor.config import Engine, Settings
from conveyor.errors import UsageError
from conveyor.extensions import require_extra
from conveyor.models._base import Model, ModelKind
from conveyor.models._baselines import PopularityRecommender, PriorClassifier
from conveyor.models._classifier import LightGBMModel, RandomForestModel, TabularClassifier, XGBoostModel
from conveyor.models._interactions import InteractionColumns
from conveyor.models._model_type import model_type_spec
from conveyor.models._recommender import ImplicitRecommender
from conveyor.models._spark_als import SparkALSRecommender
from conveyor.models._spark_xgboost import SparkXGBoostModel

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


def popularity_baseline(settings: Settings) -> Model:
    """The recommenders' baseline: the most popular items of the training data."""
    columns = interaction_columns(settings)
    return PopularityRecommender(columns=columns, event_weights=settings.data.event_weights)


def prior_baseline(settings: Settings) -> Model:
    """The classifiers' baseline: the class priors of the training data."""
    return PriorClassifier(target=_target(settings))


def _target(settings: Settings) -> str:
    target = settings.data.target
    if not target:
        raise UsageError("data.target: a classifier needs the name of its label column")
    return target


@dataclass(frozen=True)
class ImplicitType:
    """ALS or BPR from the ``implicit`` library (the ``recommender`` extra); ALS also on Spark MLlib."""

    algorithm: Literal["als", "bpr"]
    engines: tuple[str, ...] = ("local",)
    kind: ModelKind = "recommender"

    def params(self, given: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
        return recommender_params(given, settings)

    def create(self, params: Mapping[str, Any], settings: Settings) -> Model:
        require_extra("implicit", "recommender", f"model type {self.algorithm}")
        if settings.model.engine is Engine.SPARK and Engine.SPARK.value in self.engines:
            return SparkALSRecommender(
                params=recommender_params(params, settings),
                seed=settings.model.seed,
                columns=interaction_columns(settings),
                event_weights=settings.data.event_weights,
                spark=settings.spark,
            )
        return ImplicitRecommender(
            algorithm=self.algorithm,
            params=recommender_params(params, settings),
            seed=settings.model.seed,
            columns=interaction_columns(settings),
            event_weights=settings.data.event_weights,
        )

    def baseline(self, settings: Settings) -> Model:
        return popularity_baseline(settings)


@dataclass(frozen=True)
class TabularType:
    """A tabular classifier; ``library``: its training library and extra when not in the core install."""

    name: str
    model: type[TabularClassifier]
    library: tuple[str, str] | None = None
    engines: tuple[str, ...] = ("local",)
    kind: ModelKind = "classifier"
    spark_model: type[SparkXGBoostModel] | None = None  # what ``model.engine: spark`` fits instead

    def params(self, given: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
        return dict(given)

    def create(self, params: Mapping[str, Any], settings: Settings) -> Model:
        if self.library is not None:
            require_extra(*self.library, f"model type {self.name}")
        if settings.model.engine is Engine.SPARK and self.spark_model is not None:
            return self.spark_model(
                target=_target(settings), params=params, seed=settings.model.seed, spark=settings.spark
            )
        return self.model(target=_target(settings), params=params, seed=settings.model.seed)

    def baseline(self, settings: Settings) -> Model:
        return prior_baseline(settings)


ALS = ImplicitType("als", engines=("local", "spark"))
BPR = ImplicitType("bpr")
RANDOM_FOREST = TabularType("random-forest", RandomForestModel)
XGBOOST = TabularType(
    "xgboost",
    XGBoostModel,
    ("xgboost", "classifier"),
    engines=("local", "spark"),
    spark_model=SparkXGBoostModel,
)
LIGHTGBM = TabularType("lightgbm", LightGBMModel, ("lightgbm", "classifier"))


def make_model(model_type: str, params: Mapping[str, Any], settings: Settings) -> Model:
    """An unfitted model of the registered ``model_type`` with ``params`` over its defaults;
    ExtensionError in one line when its training library (an optional extra) is not installed."""
    return model_type_spec(model_type).create(params, settings)


def make_baseline(model_type: str, settings: Settings) -> Model:
    """The baseline a model of ``model_type`` must beat: most popular items, or class priors."""
    return model_type_spec(model_type).baseline(settings)
