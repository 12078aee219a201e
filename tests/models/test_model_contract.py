"""The contract every Model implementation inherits: fit, save/load round trip, unfitted use, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conveyor.config import ModelType, Settings
from conveyor.errors import InputError, UsageError
from conveyor.models import (
    MANIFEST,
    Classifier,
    Model,
    NotFittedError,
    PopularityRecommender,
    PriorClassifier,
    Recommender,
    load_model,
    make_model,
)

RECOMMENDER = Settings.model_validate({"model": {"embedding_dim": 8, "epochs": 5}})
CLASSIFIER = Settings.model_validate(
    {"project": {"template": "classifier"}, "data": {"target": "label"}, "model": {"type": "random-forest"}}
)

FACTORIES = {
    "als": lambda: make_model(ModelType.ALS, {}, RECOMMENDER),
    "bpr": lambda: make_model(ModelType.BPR, {"epochs": 20}, RECOMMENDER),
    "popularity": PopularityRecommender,
    "random-forest": lambda: make_model(ModelType.RANDOM_FOREST, {"n_estimators": 10}, CLASSIFIER),
    "xgboost": lambda: make_model(ModelType.XGBOOST, {"n_estimators": 10}, CLASSIFIER),
    "lightgbm": lambda: make_model(ModelType.LIGHTGBM, {"n_estimators": 10}, CLASSIFIER),
    "prior": lambda: PriorClassifier(target="label"),
}


@pytest.fixture(params=sorted(FACTORIES))
def case(request, interactions, rows):
    model = FACTORIES[request.param]()
    data = interactions if isinstance(model, Recommender) else rows
    return request.param, model, data


def outputs(model: Model, data):
    if isinstance(model, Recommender):
        return model.recommend([0, 1, 2, 999_999], 5)
    assert isinstance(model, Classifier)
    return model.predict_proba(data.head(20)).tolist()


def test_constructor_only_stores_parameters(case):
    _, model, _ = case
    assert not model.is_fitted()
    with pytest.raises(NotFittedError, match="call fit first"):
        model.save(Path("/nonexistent-never-written"))


def test_unfitted_use_raises_not_fitted(case):
    _, model, data = case
    with pytest.raises(NotFittedError, match="fit first"):
        outputs(model, data)


def test_save_load_round_trip_gives_identical_outputs(case, tmp_path):
    name, model, data = case
    assert model.fit(data) is model
    before = outputs(model, data)
    model.save(tmp_path / name)
    manifest = json.loads((tmp_path / name / MANIFEST).read_text())
    assert manifest["kind"] == model.kind
    assert manifest["class"].endswith(type(model).__qualname__)
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(model)
    assert outputs(loaded, data) == before
    assert type(model).load(tmp_path / name).is_fitted()


def test_loading_as_the_wrong_class_is_refused(case, tmp_path):
    name, model, data = case
    model.fit(data).save(tmp_path / name)
    other = PriorClassifier if isinstance(model, Recommender) else PopularityRecommender
    with pytest.raises(InputError, match="not a"):
        other.load(tmp_path / name)


def test_classifier_encodes_categories_and_tolerates_unknown_ones(rows):
    model = make_model(ModelType.LIGHTGBM, {"n_estimators": 20}, CLASSIFIER).fit(rows)
    assert model.feature_types == {"x": "numeric", "colour": "categorical", "noise": "numeric"}
    assert model.classes == ["no", "yes"]
    new = rows.head(3).with_columns(colour=pl.lit("purple"))
    proba = model.predict_proba(new)
    assert proba.shape == (3, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    with pytest.raises(InputError, match="missing feature column"):
        model.predict_proba(rows.drop("x"))


def test_bad_parameters_are_usage_errors(rows, interactions):
    with pytest.raises(UsageError, match="random-forest parameter"):
        make_model(ModelType.RANDOM_FOREST, {"n_trees": 3}, CLASSIFIER).fit(rows)
    with pytest.raises(UsageError, match="unknown als parameter"):
        make_model(ModelType.ALS, {"depth": 3}, RECOMMENDER).fit(interactions)


def test_manifest_outside_conveyor_is_refused(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps({"class": "os:system", "kind": "classifier"}))
    with pytest.raises(InputError, match="outside conveyor"):
        load_model(tmp_path)
