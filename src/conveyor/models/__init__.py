"""Trainer interface; classifier and recommender implementations; the model types registry."""

from conveyor.models._base import (
    MANIFEST,
    Classifier,
    Model,
    NotFittedError,
    Recommendation,
    Recommender,
    load_model,
)
from conveyor.models._baselines import PopularityRecommender, PriorClassifier
from conveyor.models._classifier import LightGBMModel, RandomForestModel, TabularClassifier, XGBoostModel
from conveyor.models._encoding import FeatureSpec
from conveyor.models._factory import (
    make_baseline,
    make_model,
    popularity_baseline,
    prior_baseline,
    recommender_params,
)
from conveyor.models._interactions import InteractionColumns
from conveyor.models._model_type import ModelTypeSpec, model_type_spec
from conveyor.models._recommender import ImplicitRecommender, MatrixRecommender
from conveyor.models._spark_als import SparkALSRecommender
from conveyor.models._spark_xgboost import SparkXGBoostModel

__all__ = [
    "MANIFEST",
    "Classifier",
    "FeatureSpec",
    "ImplicitRecommender",
    "InteractionColumns",
    "LightGBMModel",
    "MatrixRecommender",
    "Model",
    "ModelTypeSpec",
    "NotFittedError",
    "PopularityRecommender",
    "PriorClassifier",
    "RandomForestModel",
    "Recommendation",
    "Recommender",
    "SparkALSRecommender",
    "SparkXGBoostModel",
    "TabularClassifier",
    "XGBoostModel",
    "load_model",
    "make_baseline",
    "make_model",
    "model_type_spec",
    "popularity_baseline",
    "prior_baseline",
    "recommender_params",
]
