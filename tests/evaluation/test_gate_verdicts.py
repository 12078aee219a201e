"""Gates decide with known inputs; a worse model fails the paired regression gate."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from conveyor.evaluation import (
    Difference,
    HoldoutSet,
    baseline_gate,
    classification_scores,
    encode_labels,
    evidence_gate,
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
    assert classification_scores(encode_labels(y, prior.classes), proba)["roc_auc"] == 0.5
    clear = Difference(estimate=0.4, low=0.3, high=0.5, confidence=0.9, resamples=1000, units=60)
    assert baseline_gate("roc_auc", 0.9, 0.5, "class-prior", clear).verdict == "pass"
    worse = Difference(estimate=0.1, low=0.05, high=0.15, confidence=0.9, resamples=1000, units=60)
    assert baseline_gate("log_loss", 0.7, 0.6, "class-prior", worse).verdict == "fail"
    assert latency_gate(12.0, 10.0).verdict == "fail"
    assert size_gate(2_000_000, 1.0).verdict == "fail"
    assert size_gate(500_000, 1.0).verdict == "pass"


def test_beat_baseline_is_decided_on_the_interval_not_the_point_values():
    # the point value beats the baseline, but the paired interval reaches below 0: not shown
    noisy = Difference(estimate=0.01, low=-0.004, high=0.024, confidence=0.9, resamples=1000, units=40)
    gate = baseline_gate("ndcg_at_10", 0.05, 0.04, "popularity", noisy)
    assert gate.verdict == "fail"
    assert "[-0.004, +0.024]" in gate.reason
    assert "over 40 units" in gate.reason
    assert "does not clear 0" in gate.reason
    # a baseline of 0 is a difference like any other: never a ratio of infinity
    zero = Difference(estimate=0.05, low=0.02, high=0.08, confidence=0.9, resamples=1000, units=500)
    gate = baseline_gate("ndcg_at_10", 0.05, 0.0, "popularity", zero)
    assert gate.verdict == "pass"
    assert "inf" not in gate.reason
    assert "ratio" not in gate.reason
    assert gate.details["difference"]["low"] == 0.02
    single = Difference(estimate=0.05, low=float("nan"), high=float("nan"), confidence=0.9, resamples=0)
    assert baseline_gate("ndcg_at_10", 0.05, 0.0, "popularity", single).verdict == "inconclusive"


def test_evidence_gate_counts_users_and_pairs():
    few = evidence_gate(18, 130, 100, unit="users")
    assert few.verdict == "inconclusive"
    assert few.reason.startswith("not enough evidence: 18 users scored (130 held-out pairs)")
    assert evidence_gate(500, 2_000, 100, unit="users").verdict == "pass"
    assert evidence_gate(99, 99, 100, unit="rows").verdict == "inconclusive"


def test_majority_class_predictor_on_a_five_percent_table_fails_beat_baseline():
    """Known answer: a model predicting the majority class for every row equals the class prior."""
    y = np.zeros(1_000, dtype=np.int64)
    y[::20] = 1  # 5 % positives
    table = pl.DataFrame({"x": np.arange(1_000.0), "label": y})
    majority = PriorClassifier(target="label").fit(table)
    baseline = PriorClassifier(target="label").fit(table)
    test = HoldoutSet.from_rows(table, target="label")
    candidate, base = score(majority, test), score(baseline, test)
    m = candidate.metrics
    assert candidate.info == {"positive_class": 1, "minority_share": 0.05}
    assert (m["accuracy"], m["balanced_accuracy"], m["f1"]) == (0.95, 0.5, 0.0)
    assert m["average_precision"] == pytest.approx(0.05)  # a constant predictor scores the prevalence
    assert m["f1_macro"] == pytest.approx(0.95 / 1.95)  # majority F1 0.974 and 0, averaged
    diff = paired_difference("average_precision", candidate, base, resamples=200)
    gate = baseline_gate("average_precision", m["average_precision"], base.metrics["average_precision"],
                         "class-prior", diff)  # fmt: skip
    assert gate.verdict == "fail"


def test_positive_class_can_be_configured():
    y = np.asarray([0] * 5 + [1] * 15)
    table = pl.DataFrame({"x": np.arange(20.0), "label": y})
    model = PriorClassifier(target="label").fit(table)
    assert score(model, HoldoutSet.from_rows(table, target="label")).info["positive_class"] == 0
    chosen = score(model, HoldoutSet.from_rows(table, target="label", positive_class=1))
    assert chosen.info["positive_class"] == 1
    assert chosen.metrics["f1"] == pytest.approx(2 * 0.75 / 1.75)  # predicts 1 everywhere: precision 0.75
