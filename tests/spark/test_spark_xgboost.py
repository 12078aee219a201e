"""model.engine: spark with model.type xgboost — xgboost.spark on a planted tabular task, then
train → evaluate → register → serve.

Known answer: P(label = yes) = sigmoid(2·x1 − 1.5·x2 + 1.5·[colour = red] − 0.5), drawn per row,
so the best any model can do is the AUC of the true probabilities on the held-out rows (ORACLE).
The Spark-fitted and the locally fitted XGBoost must both come within NEAR_ORACLE of it and agree
with each other within AUC_TOLERANCE (absolute): distributed ``hist`` takes its bins from each
worker's quantile sketch, so the trees are close to, not equal to, the local ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score
from spark_support import (
    SPARK_TESTS,
    SPARK_YAML,
    TEST_SPARK,
    jvm_in,
    pyspark_imported_by_serving,
    serving,
    trained_into_production,
)

from conveyor.errors import UsageError
from conveyor.models import SparkXGBoostModel, XGBoostModel, load_model
from support import free_port

pytestmark = SPARK_TESTS

AUC_TOLERANCE = 0.02
NEAR_ORACLE = 0.03
PARAMS = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.1}


def planted_table(n: int, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """Rows with label drawn from a known probability, and that probability."""
    rng = np.random.default_rng(seed)
    x1, x2, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n)
    logit = 2.0 * x1 - 1.5 * x2 + 1.5 * (colour == "red") - 0.5
    p = 1.0 / (1.0 + np.exp(-logit))
    label = np.where(rng.random(n) < p, "yes", "no")
    frame = pl.DataFrame({"x1": x1, "x2": x2, "colour": colour, "noise": noise, "label": label})
    return frame, p


def _auc(model: XGBoostModel, rows: pl.DataFrame) -> float:
    yes = model.classes.index("yes")
    return float(roc_auc_score(rows["label"].to_numpy() == "yes", model.predict_proba(rows)[:, yes]))


def test_spark_and_local_xgboost_agree_on_a_planted_table(spark, tmp_path: Path) -> None:
    data, p = planted_table(3000)
    train, test = data.head(2000), data.tail(1000)
    oracle = float(roc_auc_score(test["label"].to_numpy() == "yes", p[2000:]))
    on_spark = SparkXGBoostModel(target="label", params=PARAMS, spark=TEST_SPARK).fit(train)
    local = XGBoostModel(target="label", params=PARAMS).fit(train)
    auc_spark, auc_local = _auc(on_spark, test), _auc(local, test)
    assert abs(auc_spark - auc_local) <= AUC_TOLERANCE, (auc_spark, auc_local)
    assert auc_spark >= oracle - NEAR_ORACLE, (auc_spark, oracle)
    assert on_spark.classes == ["no", "yes"]
    assert on_spark.feature_names == local.feature_names

    # saved as the flavour serving loads: the manifest names XGBoostModel, same answers
    on_spark.save(tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / "conveyor-model.json").read_text())
    assert manifest["class"] == "conveyor.models._classifier:XGBoostModel"
    assert manifest["estimator_file"] == "model.ubj"
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is XGBoostModel
    np.testing.assert_array_equal(loaded.predict_proba(test), on_spark.predict_proba(test))


def test_a_parameter_xgboost_spark_refuses_is_one_line(spark) -> None:
    data, _ = planted_table(200)
    with pytest.raises(UsageError, match=r"invalid xgboost parameter for Spark: .*n_jobs"):
        SparkXGBoostModel(target="label", params={"n_jobs": 4}, spark=TEST_SPARK).fit(data)


def _project(root: Path) -> Path:
    (root / "data" / "raw").mkdir(parents=True)
    port = free_port()
    (root / "conveyor.yaml").write_text(
        "project: {name: churn, template: classifier}\n"
        "data: {source: data/raw/train.parquet, target: label}\n"
        "model: {type: xgboost, engine: spark, primary_metric: roc_auc,"
        " params: {n_estimators: 40, max_depth: 3}}\n"
        "gates: {latency_p95_ms: 1000, no_regression: {metric: roc_auc}}\n"
        f"deploy: {{environments: {{production: {{port: {port}}}}}}}\n" + SPARK_YAML
    )
    planted_table(1500)[0].write_parquet(root / "data" / "raw" / "train.parquet")
    return root


def test_spark_trained_classifier_registers_and_serves_without_a_jvm(
    spark, cli: Callable[..., object], tmp_path: Path
) -> None:
    root = _project(tmp_path / "churn")
    best, version = trained_into_production(cli, root)
    assert best["model_type"] == "xgboost"
    assert best["metrics"]["roc_auc"] >= 0.8
    assert best["metrics"]["roc_auc"] >= best["baseline_metrics"]["roc_auc"] + 0.25

    with serving(root) as (url, server):
        rows = [
            {"x1": 2.5, "x2": -2.0, "colour": "red", "noise": 0.0},  # P(yes) ≈ 1
            {"x1": -2.5, "x2": 2.0, "colour": "blue", "noise": 0.0},  # P(yes) ≈ 0
        ]
        answer = httpx.post(f"{url}/predict", json={"rows": rows}).json()
        assert answer["model_version"] == version["version"], answer
        assert answer["predictions"] == ["yes", "no"], answer
        assert jvm_in(server) == []
    assert not pyspark_imported_by_serving()
