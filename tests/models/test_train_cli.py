"""train → evaluate → register through the command line, on the real MLflow SQLite store."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from conveyor.pipeline import conveyor_pin
from conveyor.project import Project
from conveyor.registry import get_version_by_alias, set_alias, tracking_client


@pytest.mark.xdist_group("models-cli")
def test_recommender_train_reuse_evaluate_register(cli, recommender_project):
    root = recommender_project
    first = cli("--project", root, "train", "--json")
    assert first.exit_code == 0, first.stderr
    run = first.json()
    assert run["reused"] is False
    best = run["best"]
    assert best["metrics"]["ndcg_at_10"] >= 2 * best["baseline_metrics"]["ndcg_at_10"]
    assert best["params"]["factors"] == 16
    assert (root / ".conveyor" / "reference-profile.json").is_file()

    again = cli("--project", root, "train", "--json")
    assert again.exit_code == 0
    assert again.json()["reused"] is True
    assert again.json()["run_id"] == run["run_id"]

    # a one-row change of the data misses the reuse index
    path = root / "data" / "raw" / "interactions.parquet"
    data = pl.read_parquet(path)
    flipped = pl.when(pl.col("event") == "view").then(pl.lit("purchase")).otherwise(pl.lit("view"))
    first_row = pl.int_range(pl.len()) == 0
    data.with_columns(
        pl.when(first_row).then(flipped).otherwise(pl.col("event")).alias("event")
    ).write_parquet(path)
    assert pl.read_parquet(path).height == data.height
    changed = cli("--project", root, "train", "--json")
    assert changed.json()["reused"] is False
    assert changed.json()["run_id"] != run["run_id"]

    unregistered = cli("--project", root, "register", "--json")
    assert unregistered.exit_code == 1
    assert "evaluate" in unregistered.json()["error"]["message"]

    evaluation = cli("--project", root, "evaluate", "--json")
    assert evaluation.exit_code == 0, evaluation.stdout
    verdicts = {g["name"]: g["verdict"] for g in evaluation.json()["gates"]}
    assert verdicts == {
        "evidence": "pass",
        "no_regression": "skip",
        "beat_baseline": "pass",
        "determinism": "pass",
        "latency": "pass",
        "artifact_size": "pass",
    }
    registered = cli("--project", root, "register", "--json")
    assert registered.exit_code == 0, registered.stderr
    version = registered.json()
    assert version["version"] == "1"
    assert version["tags"]["conveyor.data_fingerprint"] == changed.json()["best"]["data_fingerprint"]
    assert len(version["sha256"]) == 64
    # the version's pip requirements install Conveyor from the project's resolvable pin (the
    # line the generated requirements.lock holds), not a conveyor-ml==<version> no index serves
    pyfunc_root = next(p for p in Path(version["source_dir"]).parents if (p / "MLmodel").is_file())
    requirements = (pyfunc_root / "requirements.txt").read_text().splitlines()
    pin = conveyor_pin(Project.load(root).settings)
    assert pin.requirement in requirements
    assert [line for line in requirements if line.startswith("conveyor-ml")] == [pin.requirement]

    # a deliberately worse model must fail against production
    project = Project.load(root)
    set_alias(project, "production", "1")
    worse = cli("--project", root, "train", "--embedding-dim", "2", "--epochs", "1", "--json")
    assert worse.exit_code == 0
    failed = cli("--project", root, "evaluate", "--json")
    assert failed.exit_code == 1
    gates = {g["name"]: g for g in failed.json()["gates"]}
    assert gates["no_regression"]["verdict"] == "fail"
    assert "production v1" in gates["no_regression"]["reason"]
    refused = cli("--project", root, "register", "--json")
    assert refused.exit_code == 1
    assert "failed its quality gates" in refused.json()["error"]["message"]
    assert get_version_by_alias(project, "candidate").version == "1"


@pytest.mark.xdist_group("models-cli")
def test_classifier_matrix_picks_the_best_and_validation_stops_training(cli, classifier_project):
    root = classifier_project
    result = cli("--project", root, "train", "--matrix", "--json")
    assert result.exit_code == 0, result.stderr
    payload = result.json()
    assert sorted(r["model_type"] for r in payload["runs"]) == ["lightgbm", "random-forest", "xgboost"]
    best = max(payload["runs"], key=lambda r: r["metrics"]["roc_auc"])
    assert payload["run_id"] == best["run_id"]
    assert best["metrics"]["roc_auc"] > best["baseline_metrics"]["roc_auc"] == 0.5
    # the parent run is started with MLflow's run API (its user and source tags), named readably,
    # finished, and the three runs are its nested children
    project = Project.load(root)
    client = tracking_client(project)
    child = client.get_run(best["run_id"])
    parent = client.get_run(child.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["conveyor.matrix"] == "true"
    assert parent.data.tags["mlflow.user"]
    assert parent.data.tags["mlflow.source.type"] == "LOCAL"
    assert re.fullmatch(r"matrix-\d{4}-\d{2}-\d{2}-\d{6}", parent.info.run_name)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["conveyor.best_run_id"] == best["run_id"]
    assert sorted(parent.data.tags["conveyor.runs"].split(",")) == sorted(
        r["run_id"] for r in payload["runs"]
    )
    assert {client.get_run(r["run_id"]).data.tags["mlflow.parentRunId"] for r in payload["runs"]} == {
        parent.info.run_id
    }

    (root / "schema.yaml").write_text(
        "version: 1\ncolumns:\n  x: {type: float}\n  colour: {type: string, categories: [red, green]}\n"
        "  noise: {type: float}\n  label: {type: string}\n"
    )
    stopped = cli("--project", root, "train", "--force", "--json")
    assert stopped.exit_code == 1
    assert stopped.json()["error"]["type"] == "ValidationFailed"


def test_bad_options_are_usage_errors(cli, recommender_project):
    root = recommender_project
    assert cli("--project", root, "train", "--param", "nonsense").exit_code == 2
    wrong = cli("--project", root, "train", "--model-type", "xgboost", "--json")
    assert wrong.exit_code == 2
    assert "does not fit template" in wrong.json()["error"]["message"]
    assert cli("--project", root, "evaluate").exit_code == 2  # nothing trained yet
