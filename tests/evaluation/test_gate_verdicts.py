"""Gates decide with known inputs; a worse model fails the paired regression gate."""

from __future__ import annotations

import numpy as np
import polars as pl

from conveyor.evaluation import (
    Difference,
    HoldoutSet,
    baseline_gate,
    classification_scores,
    latency_gate,
    min_metric_gates,
    paired_difference,
    regression_gate,
    score,
    size_gate,
)
from conveyor.models import LightGBMModel, PriorClassifier


def rows(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pl.DataFrame({"x": x, "z": rng.normal(size=n), "label": np.where(x > 0, 1, 0)})


def test_min_metric_gates_treat_log_loss_as_a_ceiling():
    gates = min_metric_gates({"accuracy": 0.8, "log_loss": 0.6}, {"accuracy": 0.9, "log_loss": 0.7})
    assert [(g.name, g.verdict) for g in gates] == [("min:accuracy", "fail"), ("min:log_loss", "pass")]
    assert "0.8 < 0.9" in gates[0].reason


def test_worse_candidate_fails_no_regression_and_equal_one_passes():
    train, test_rows = rows(400, 0), rows(300, 1)
    good = LightGBMModel(target="label", params={"n_estimators": 30}).fit(train)
    worse = LightGBMModel(target="label", params={"n_estimators": 30}).fit(train.drop("x"))
    test = HoldoutSet.from_rows(test_rows, target="label")
    production = score(good, test)
    candidate = score(worse, test)
    diff = paired_difference("roc_auc", candidate, production, resamples=200)
    assert diff.high < 0  # clearly worse on the same rows
    gate = regression_gate(
        metric="roc_auc",
        candidate=candidate.metrics["roc_auc"],
        production=production.metrics["roc_auc"],
        difference=diff,
        tolerance=0.02,
        mode="relative",
        higher_is_better=True,
        production_version="3",
    )
    assert gate.verdict == "fail"
    assert "production v3" in gate.reason
    same = paired_difference("accuracy", production, production, resamples=200)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)


def test_noise_within_tolerance_passes():
    diff = Difference(estimate=-0.01, low=-0.05, high=0.03, confidence=0.9, resamples=1000)
    gate = regression_gate(
        metric="ndcg_at_10",
        candidate=0.19,
        production=0.20,
        difference=diff,
        tolerance=0.02,
        mode="absolute",
        higher_is_better=True,
        production_version="1",
    )
    assert gate.verdict == "pass"


def test_baseline_latency_and_size_gates():
    train = rows(200, 2)
    prior = PriorClassifier(target="label").fit(train)
    y = np.asarray(train["label"].to_list())
    proba = prior.predict_proba(train)
    assert classification_scores(y, proba)["roc_auc"] == 0.5
    assert baseline_gate("roc_auc", 0.9, 0.5, "class-prior").verdict == "pass"
    assert baseline_gate("log_loss", 0.7, 0.6, "class-prior").verdict == "fail"
    assert latency_gate(12.0, 10.0).verdict == "fail"
    assert size_gate(2_000_000, 1.0).verdict == "fail"
    assert size_gate(500_000, 1.0).verdict == "pass"
