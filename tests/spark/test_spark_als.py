"""model.engine: spark — MLlib ALS on planted tastes, through train → evaluate → register → serve.

Known answer: users of taste group g pick 90 % of their items in group g (tests/models/conftest.py).
Spark's ALS and implicit's ALS must both find that, and agree on held-out precision@10 within
PRECISION_TOLERANCE (absolute): the libraries weigh regularisation and confidence differently
(MLlib: λ·n_u and 1 + α·w; implicit: λ and α·w), so they are close, not equal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from spark_support import (
    SPARK_TESTS,
    SPARK_YAML,
    TEST_SPARK,
    jvm_in,
    pyspark_imported_by_serving,
    serving,
    trained_into_production,
)

from conveyor.config import Settings
from conveyor.evaluation import HoldoutSet, score
from conveyor.models import ImplicitRecommender, PopularityRecommender, SparkALSRecommender, load_model
from support import free_port


def _planted() -> Callable[..., pl.DataFrame]:
    """tests/models' planted tastes (its conftest.py, loaded by path: both folders have a conftest)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "planted", Path(__file__).parents[1] / "models" / "conftest.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.planted_interactions  # type: ignore[no-any-return]


planted_interactions = _planted()

pytestmark = SPARK_TESTS

PRECISION_TOLERANCE = 0.05
PARAMS = {"factors": 16, "iterations": 10, "regularization": 0.01, "alpha": 1.0}


def _split(data: pl.DataFrame) -> tuple[pl.DataFrame, HoldoutSet]:
    cutoff = data["timestamp"].max() - timedelta(days=7)
    train = data.filter(pl.col("timestamp") <= cutoff)
    test = data.filter(pl.col("timestamp") > cutoff).select("user_id", "item_id").unique()
    truth = test.join(train.select("user_id", "item_id").unique(), on=["user_id", "item_id"], how="anti")
    return train, HoldoutSet.from_truth(truth, k=10, max_users=10_000, seed=0)


def test_spark_als_and_implicit_als_agree_on_planted_tastes(spark, tmp_path: Path) -> None:
    train, test = _split(planted_interactions())
    on_spark = SparkALSRecommender(params=PARAMS, spark=TEST_SPARK).fit(train)
    local = ImplicitRecommender(params=PARAMS).fit(train)
    popular = PopularityRecommender().fit(train)
    p_spark = score(on_spark, test).metrics["precision_at_10"]
    p_local = score(local, test).metrics["precision_at_10"]
    p_popular = score(popular, test).metrics["precision_at_10"]
    assert abs(p_spark - p_local) <= PRECISION_TOLERANCE, (p_spark, p_local)
    assert p_spark >= 1.5 * p_popular, (p_spark, p_popular)
    recs = on_spark.recommend(list(range(50)), 10)
    assert np.mean([[item % 5 == r.user_id % 5 for item in r.items] for r in recs]) >= 0.9

    # saved as the flavour serving loads: the manifest names ImplicitRecommender, same answers
    on_spark.save(tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / "conveyor-model.json").read_text())
    assert manifest["class"] == "conveyor.models._recommender:ImplicitRecommender"
    assert manifest["params"] == PARAMS
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is ImplicitRecommender
    assert loaded.recommend([0, 1, 2], 10) == on_spark.recommend([0, 1, 2], 10)


def _project(root: Path) -> Path:
    (root / "data" / "raw").mkdir(parents=True)
    port = free_port()
    (root / "conveyor.yaml").write_text(
        "project: {name: shop}\n"
        "model: {engine: spark, embedding_dim: 16, epochs: 8}\n"
        "gates: {latency_p95_ms: 1000}\n"
        f"deploy: {{environments: {{production: {{port: {port}}}}}}}\n" + SPARK_YAML
    )
    planted_interactions().write_parquet(root / "data" / "raw" / "interactions.parquet")
    return root


def test_spark_trained_model_registers_and_serves_without_a_jvm(
    spark, cli: Callable[..., object], tmp_path: Path
) -> None:
    root = _project(tmp_path / "shop")
    best, version = trained_into_production(cli, root)
    assert best["metrics"]["ndcg_at_10"] >= 1.5 * best["baseline_metrics"]["ndcg_at_10"]
    with serving(root) as (url, server):
        answer = httpx.post(f"{url}/recommend", json={"user_id": 3, "k": 10}).json()
        assert answer["model_version"] == version["version"]
        assert not answer["fallback"]
        assert sum(item % 5 == 3 for item in answer["items"]) >= 8  # user 3's planted group
        assert jvm_in(server) == []
    assert not pyspark_imported_by_serving()  # loading the model needs no pyspark


def test_engine_spark_refuses_what_it_does_not_train() -> None:
    from conveyor.config import parse_settings
    from conveyor.errors import ConfigError

    only = r"model\.type: model\.engine spark trains 'als' \(Spark MLlib ALS\), 'xgboost' \(xgboost\.spark\)"
    only += " only"
    with pytest.raises(ConfigError, match=only + "; 'bpr' trains with model.engine local"):
        parse_settings({"model": {"engine": "spark", "type": "bpr"}})
    for refused in ("lightgbm", "random-forest"):
        with pytest.raises(ConfigError, match=only + f"; '{refused}' trains with model.engine local"):
            parse_settings(
                {"project": {"template": "classifier"}, "data": {"target": "y"},
                 "model": {"engine": "spark", "type": refused}}
            )  # fmt: skip
    assert Settings.model_validate({"model": {"engine": "spark"}}).model.engine.value == "spark"
    classifier = parse_settings(
        {"project": {"template": "classifier"}, "data": {"target": "y"},
         "model": {"engine": "spark", "type": "xgboost"}}
    )  # fmt: skip
    assert classifier.model.type.value == "xgboost"
    with pytest.raises(ConfigError, match=r"workflows\.model_types\.1: model\.engine spark trains"):
        parse_settings(
            {"project": {"template": "classifier"}, "data": {"target": "y"},
             "model": {"engine": "spark", "type": "xgboost"},
             "workflows": {"model_types": ["xgboost", "lightgbm"]}}
        )  # fmt: skip
