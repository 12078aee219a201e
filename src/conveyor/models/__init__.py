"""Trainer interface; classifier and recommender implementations."""

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
from conveyor.models._factory import make_baseline, make_model, recommender_params
from conveyor.models._interactions import InteractionColumns
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
    "recommender_params",
]
