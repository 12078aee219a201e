"""Serving validation consistent with the training data: nulls where the model saw them, unseen
categories and out-of-range values answered but flagged, the model's features in /openapi.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from serving_support import live_server

from conveyor.config import Settings
from conveyor.models import RandomForestModel
from conveyor.serving import StaticLoader, create_app, read_request_log

pytestmark = pytest.mark.xdist_group("serving")

SETTINGS = Settings.model_validate(
    {
        "project": {"template": "classifier"},
        "model": {"type": "random-forest"},
        "serving": {"request_log": {"flush_seconds": 0.1}},
    }
)


def _training() -> pl.DataFrame:
    """tenure 0..100 (never null), charges 10..110 with every 10th value null, plan a/b/c."""
    rng = np.random.default_rng(3)
    n = 300
    tenure = np.linspace(0, 100, n)
    charges = [None if i % 10 == 5 else 10.0 + 100.0 * i / (n - 1) for i in range(n)]
    plan = rng.choice(["a", "b", "c"], n).tolist()
    label = (tenure > 50).astype(int)
    return pl.DataFrame({"tenure": tenure, "charges": charges, "plan": plan, "churned": label})


@pytest.fixture(scope="module")
def model() -> RandomForestModel:
    return RandomForestModel(target="churned", params={"n_estimators": 5, "n_jobs": 1}).fit(_training())


@pytest.fixture(scope="module")
def served(model: RandomForestModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log_dir = tmp_path_factory.mktemp("warnings-log")
    app = create_app(SETTINGS, loader=StaticLoader({"7": model}, initial=["7"]), log_dir=log_dir)
    with live_server(app) as url:
        yield url, log_dir


def test_the_model_learns_nullability_and_ranges(model: RandomForestModel, tmp_path: Path) -> None:
    model.save(tmp_path / "m")
    specs = RandomForestModel.load(tmp_path / "m").feature_specs  # they survive save and load
    assert (specs["tenure"].nullable, specs["charges"].nullable, specs["plan"].nullable) == (
        False,
        True,
        False,
    )
    assert specs["plan"].categories == ("a", "b", "c")
    # observed range widened by 10 % of its span each side; non-negative data keeps 0
    assert (specs["tenure"].low, specs["tenure"].high) == (0.0, pytest.approx(110.0))
    assert (specs["charges"].low, specs["charges"].high) == (pytest.approx(0.0), pytest.approx(120.0))


def test_a_training_row_with_a_null_in_a_nullable_feature_is_answered(served: tuple[str, Path]) -> None:
    url, _ = served
    row = _training().row(5, named=True)  # charges is null in this training row
    del row["churned"]
    assert row["charges"] is None
    answer = httpx.post(f"{url}/predict", json={"features": row})
    assert answer.status_code == 200, answer.text
    assert answer.json()["warnings"] == []
    refused = httpx.post(f"{url}/predict", json={"features": {**row, "tenure": None}})
    assert (refused.status_code, refused.json()["field"]) == (422, "features.tenure")
    assert "must not be null" in refused.json()["detail"]


def test_unseen_categories_and_out_of_range_values_are_answered_and_flagged(served: tuple[str, Path]) -> None:
    url, log_dir = served
    before = httpx.get(f"{url}/metrics").text
    odd = httpx.post(f"{url}/predict", json={"features": {"tenure": -500, "charges": 50.0, "plan": "zeta"}})
    assert odd.status_code == 200, odd.text
    assert odd.json()["warnings"] == [
        {"feature": "tenure", "kind": "out_of_range"},
        {"feature": "plan", "kind": "unseen_category"},
    ]
    batch = httpx.post(
        f"{url}/predict",
        json={
            "rows": [
                {"tenure": 5, "charges": 20.0, "plan": "a"},
                {"tenure": 5, "charges": 999.0, "plan": "b"},
            ]
        },
    )
    assert batch.status_code == 200
    assert batch.json()["warnings"] == [{"feature": "charges", "kind": "out_of_range", "row": 1}]
    after = httpx.get(f"{url}/metrics").text

    def count(text: str, needle: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(needle))

    flagged = 'conveyor_input_warnings_total{feature="tenure",kind="out_of_range",model_version="7"}'
    assert count(after, flagged) - count(before, flagged) == 1
    flagged_requests = "conveyor_flagged_requests_total{"
    assert count(after, flagged_requests) - count(before, flagged_requests) == 2
    ids = {odd.json()["request_id"], batch.json()["request_id"]}
    deadline_reads = 50
    logged = pl.DataFrame()
    for _ in range(deadline_reads):  # the writer flushes every 0.1 s
        predictions, _ = read_request_log(log_dir)
        logged = predictions.filter(pl.col("request_id").is_in(list(ids)))
        if logged.height == 2:
            break
        import time

        time.sleep(0.1)
    warnings = {r["request_id"]: json.loads(r["warnings"]) for r in logged.iter_rows(named=True)}
    assert warnings[odd.json()["request_id"]] == odd.json()["warnings"]
    assert warnings[batch.json()["request_id"]] == batch.json()["warnings"]


def test_openapi_describes_the_models_features(served: tuple[str, Path]) -> None:
    url, _ = served
    document = httpx.get(f"{url}/openapi.json").json()
    features = document["components"]["schemas"]["ModelFeatures"]
    assert features["required"] == ["tenure", "charges", "plan"]
    assert features["additionalProperties"] is False
    props = features["properties"]
    assert props["tenure"]["type"] == "number"
    assert props["charges"]["type"] == ["number", "null"]
    assert props["plan"]["type"] == "string"
    assert props["plan"]["x-categories-seen"] == ["a", "b", "c"]
    assert props["tenure"]["x-expected-range"] == [0.0, pytest.approx(110.0)]
    request = document["components"]["schemas"]["PredictRequest"]["properties"]
    assert {"$ref": "#/components/schemas/ModelFeatures"} in request["features"]["anyOf"]
    assert document["info"]["x-model-version"] == "7"


def test_the_monitor_reports_the_share_of_flagged_requests(
    model: RandomForestModel, make_project, cli
) -> None:
    """30 of 120 answered requests carry an unseen category: the monitor reports 25 %."""
    root = make_project(
        "project: {name: flags, template: classifier}\nmodel: {type: random-forest}\n"
        "data: {target: churned}\n"
        "monitoring: {min_requests: 100, retrain: {action: none}}\n"
    )
    log_dir = root / ".conveyor" / "requests" / "production"
    app = create_app(SETTINGS, loader=StaticLoader({"7": model}, initial=["7"]), log_dir=log_dir)
    with live_server(app) as url, httpx.Client() as client:
        for i in range(120):
            plan = "zeta" if i % 4 == 0 else "a"
            answer = client.post(
                f"{url}/predict", json={"features": {"tenure": 20, "charges": 30.0, "plan": plan}}
            )
            assert answer.status_code == 200
    result = cli("monitor", "--project", root, "--json")  # the server closed: its log is flushed
    report = result.json()
    check = next(c for c in report["checks"] if c["name"] == "input_warnings")
    assert check["status"] == "pass"
    assert check["summary"] == "25.00 % of answered requests flagged (30 of 120): unseen_category 30"
    assert check["details"]["by_feature"] == {"plan": 30}
