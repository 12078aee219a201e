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

__all__ = [
    "MANIFEST",
    "Classifier",
    "Model",
    "NotFittedError",
    "Recommendation",
    "Recommender",
    "load_model",
]
