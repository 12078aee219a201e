"""The drift and validation results are typed objects; their JSON is the command line's, key for key."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from conveyor.config import DriftMethod, DriftSection
from conveyor.data import (
    ColumnDrift,
    DriftReport,
    Schema,
    ValidationReport,
    build_profile,
    detect_drift,
    validate_table,
)

# the keys `conveyor drift --json` has always printed per column, in this order
NUMERIC_KEYS = [
    "type", "test", "statistic", "p_value", "threshold", "drift", "wasserstein", "wasserstein_normed",
    "ks_statistic", "ks_p_value", "psi", "distribution_drift", "reference_mean", "current_mean",
    "reference_std", "current_std", "current_rows", "reference_sample", "current_sample", "mode",
    "null_rate_reference", "null_rate_current", "null_rate_effect", "null_rate_p_value",
    "null_rate_threshold", "null_rate_drift",
]  # fmt: skip
CATEGORICAL_KEYS = [
    "type", "test", "statistic", "p_value", "threshold", "drift", "distribution_drift", "jensen_shannon",
    "chi2", "chi2_dof", "chi2_p_value", "chi2_pooled_categories", "psi", "categories", "unseen_categories",
    "unseen_share", "current_rows", "mode", "null_rate_reference", "null_rate_current", "null_rate_effect",
    "null_rate_p_value", "null_rate_threshold", "null_rate_drift",
]  # fmt: skip
ADJUSTED = ["p_value_adjusted", "null_rate_p_value_adjusted"]


def _tables() -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(7)
    n = 4000
    ref = pl.DataFrame({"x": rng.normal(0, 1, n), "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})
    cur = pl.DataFrame({"x": rng.normal(1.0, 1, n), "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})
    return ref, cur


def test_drift_columns_are_typed_and_their_json_keeps_the_printed_keys_in_order():
    ref, cur = _tables()
    report = detect_drift(build_profile(ref), cur, DriftSection())
    assert isinstance(report, DriftReport)
    x, c = report.columns["x"], report.columns["c"]
    assert isinstance(x, ColumnDrift)
    assert isinstance(c, ColumnDrift)
    # known answer: a one-sd shift drifts, the same category shares do not
    assert (x.type, x.test, x.drift, x.categorical) == ("numeric", "wasserstein", True, False)
    assert x.statistic == pytest.approx(1.0, abs=0.1)
    assert x.current_mean == pytest.approx(1.0, abs=0.1)
    assert (c.type, c.test, c.drift, c.categorical) == ("categorical", "jensen_shannon", False, True)
    assert c.jensen_shannon == c.statistic
    assert c.wasserstein is None
    assert x.chi2 is None
    assert report.drifted_columns == ["x"]
    body = report.to_dict()
    assert list(body["columns"]["x"]) == NUMERIC_KEYS
    assert list(body["columns"]["c"]) == CATEGORICAL_KEYS
    assert body["columns"]["x"]["statistic"] == x.statistic
    assert body["columns"]["c"]["unseen_categories"] == []
    json.dumps(body, allow_nan=False)  # plain JSON: non-finite numbers are None already


def test_the_pvalue_method_adds_the_adjusted_p_values_last():
    ref, cur = _tables()
    report = detect_drift(build_profile(ref), cur, DriftSection(method=DriftMethod.PVALUE))
    x, c = report.columns["x"], report.columns["c"]
    assert (x.test, c.test) == ("ks", "chi2")
    assert x.p_value_adjusted is not None
    assert x.p_value_adjusted >= x.p_value
    body = report.to_dict()["columns"]
    assert list(body["x"]) == NUMERIC_KEYS + ADJUSTED
    assert list(body["c"]) == CATEGORICAL_KEYS + ADJUSTED


def test_validation_failures_are_typed_and_examples_plain_at_the_edge():
    df = pl.DataFrame({"n": [1, 2, 300], "at": [datetime(2020, 1, 1)] * 3})
    schema = Schema.model_validate(
        {"columns": {"n": {"type": "integer", "max": 10}, "at": {"type": "datetime"}},
         "freshness": {"column": "at", "max_age_hours": 1}}
    )  # fmt: skip
    report = validate_table(df, schema)
    assert isinstance(report, ValidationReport)
    assert not report.ok
    by_rule = {f.rule: f for f in report.failures}
    assert (by_rule["max"].column, by_rule["max"].n_rows, by_rule["max"].examples) == ("n", 1, [300])
    assert by_rule["freshness"].examples == [datetime(2020, 1, 1)]
    assert by_rule["freshness"].plain_examples == ["2020-01-01T00:00:00"]
    body = report.to_dict()
    assert [f["rule"] for f in body["failures"]] == [f.rule for f in report.failures]
    assert {f["rule"]: f["examples"] for f in body["failures"]}["freshness"] == ["2020-01-01T00:00:00"]
