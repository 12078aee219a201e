"""The tabular variant of the demo: a model matrix to production, then planted column drift.

``conveyor demo --template classifier``: a generated classification table, a
matrix of random forest, XGBoost and LightGBM, the pipeline to production,
``/predict`` traffic, then a table in which two numeric columns shift — the drift
report must flag them (a few of 11 columns is not dataset drift, so ``drift``
exits 0).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import yaml

from conveyor.data import generate_classification
from conveyor.pipeline import PIPELINE, select_stages

if TYPE_CHECKING:
    from conveyor.demo._scenario import Demo

# generate_classification(drift=True) moves f0 by +1 σ and scales f1 by 1.5 (it also reverses the
# frequencies of c0's categories, too close to uniform for the drift test to flag at 6,000 rows)
TABULAR_SHIFTED = ("f0", "f1")
TABULAR_STORY = ("week 2/shifted columns flagged",)


def run_tabular(demo: Demo) -> None:
    """The tabular variant: a model matrix to production, predict traffic, planted column drift."""
    from conveyor.demo._scenario import describe_step, dvc_add  # the scenario imports this module
    from conveyor.deploy import free_port

    demo.base.mkdir(parents=True, exist_ok=True)
    first = demo.base / "train.parquet"
    generate_classification(6000, seed=3).write_parquet(first)
    demo.steps.run(
        "setup",
        "init --data",
        [
            "init",
            str(demo.project),
            "--template",
            "classifier",
            "--data",
            str(first),
            "--target",
            "label",
        ],
        describe=lambda p: f"project at {demo.project.name}/, schema inferred from 6000 rows",
    )
    config_path = demo.project / "conveyor.yaml"
    config = yaml.safe_load(config_path.read_text()) or {}
    config.setdefault("deploy", {})["environments"] = {
        "staging": {"port": free_port()},
        "production": {"port": free_port()},
    }
    model = config.setdefault("model", {})
    model["matrix"] = [{"type": "random-forest"}, {"type": "xgboost"}, {"type": "lightgbm"}]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    demo.source = demo.project / config.get("data", {}).get("source", "data/raw/train.parquet")
    demo.steps.run("week 1", "validate", ["validate"], describe=describe_step("validate"))
    demo.steps.run("week 1", "train --matrix", ["train", "--matrix"], describe=describe_step("train"))
    for stage in select_stages(PIPELINE, "evaluate", "deploy-production"):
        step = demo.steps.run("week 1", stage.name, list(stage.command), describe=describe_step(stage.name))
        if not step.ok:
            return
    started = time.perf_counter()
    rows = generate_classification(200, seed=5).drop("label").to_dicts()
    with httpx.Client(base_url=demo.production_url(), timeout=10.0) as client:
        codes = [client.post("/predict", json={"features": row}).status_code for row in rows]
    demo.steps.record(
        "week 1",
        "predict traffic",
        "200 × POST /predict",
        time.perf_counter() - started,
        f"{codes.count(200)} answered 200",
        codes.count(200) == len(codes),
    )
    generate_classification(6000, seed=4, drift=True).write_parquet(demo.source)
    dvc_add(demo.project, demo.source)
    # f0 and f1 shift: flagged per column; the dataset verdict needs half the columns
    # (a few of 11 is not dataset drift, so `drift` exits 0)
    drift = demo.steps.run("week 2", "drift", ["drift"], describe=describe_step("drift"))
    columns = drift.payload.get("columns") or {}
    flagged = sorted(n for n, c in columns.items() if isinstance(c, dict) and c.get("drift"))
    demo.steps.record(
        "week 2",
        "shifted columns flagged",
        "drift --json: per-column verdicts",
        0.0,
        f"flagged: {', '.join(flagged) or 'none'} (planted: {', '.join(TABULAR_SHIFTED)})",
        set(TABULAR_SHIFTED) <= set(flagged),
    )
    demo.steps.run("end", "status", ["status"], describe=describe_step("status"))
    demo.report()
