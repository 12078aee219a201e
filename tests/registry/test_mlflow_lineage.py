"""MLflow-native lineage on a real SQLite store: MLflow's run API tags, the dataset input, the signature."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conveyor.models import RandomForestModel
from conveyor.project import Project
from conveyor.registry import Lineage, ensure_experiment, register_version, tracking_client

GIT = ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com"]


def _customers(path: Path) -> Path:
    """600 customers; churn follows x0 + x1 (known answer for a forest to learn)."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(600, 3))
    churned = (x[:, 0] + x[:, 1] + rng.normal(scale=0.4, size=600) > 0).astype(int)
    pl.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "churned": churned}).write_csv(path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`conveyor init --data` (DVC-tracked), committed, then `conveyor train` in a subprocess."""
    from conveyor.pipeline import conveyor_program

    tmp = tmp_path_factory.mktemp("lineage")
    root = tmp / "shop"
    env_cmd = [*conveyor_program()]
    data = _customers(tmp / "customers.csv")
    init = subprocess.run(
        [*env_cmd, "init", str(root), "--template", "classifier", "--data", str(data), "--target", "churned"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    subprocess.run([*GIT, "-C", str(root), "add", "-A"], check=True, capture_output=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-qm", "init"], check=True, capture_output=True)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    train = subprocess.run(
        [*env_cmd, "--project", str(root), "train", "--json"], capture_output=True, text=True, timeout=300
    )
    assert train.returncode == 0, train.stderr
    run_id = json.loads(train.stdout)["run_id"]
    project = Project.load(root)
    return project, tracking_client(project).get_run(run_id), head.stdout.strip()


def test_the_run_is_started_with_mlflows_run_api(trained):
    _, run, head = trained
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == head  # the project's commit, not Conveyor's
    assert tags["mlflow.user"]
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"]
    assert re.fullmatch(r"random-forest-\d{4}-\d{2}-\d{2}-\d{6}", run.info.run_name), run.info.run_name
    assert run.info.status == "FINISHED"


def test_the_lineage_is_project_relative_and_dvc_tracked(trained):
    project, run, _ = trained
    tags = run.data.tags
    assert tags["conveyor.data_path"] == "data/raw/customers.csv"
    assert tags["conveyor.dvc_tracked"] == "true"  # tracked through data/raw.dvc (a folder)
    md5 = hashlib.md5((project.root / "data/raw/customers.csv").read_bytes()).hexdigest()
    assert tags["conveyor.data_fingerprint"] == f"md5:{md5}"


def test_the_training_data_is_a_dataset_input_with_its_digest_and_dvc_source(trained):
    project, run, head = trained
    [dataset_input] = run.inputs.dataset_inputs
    dataset = dataset_input.dataset
    md5 = hashlib.md5((project.root / "data/raw/customers.csv").read_bytes()).hexdigest()
    assert dataset.digest == md5
    assert dataset.name == "customers"
    assert dataset.source_type == "dvc"
    source = json.loads(dataset.source)
    assert source == {
        "uri": f"dvc://data/raw/customers.csv@{head}",
        "path": "data/raw/customers.csv",
        "dvc_file": "data/raw.dvc",
        "rev": head,
        "md5": md5,
    }
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"
    columns = [c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]]
    assert columns == ["x0", "x1", "x2", "churned"]
    assert json.loads(dataset.profile)["num_rows"] < 600  # the training part of the split only


def test_a_registered_version_carries_a_signature_and_an_input_example(make_project, tmp_path):
    """The version of a forest fitted on x and colour: inputs x, colour; outputs 0, 1, prediction."""
    import mlflow.models

    text = "project: {name: sig, template: classifier}\ndata: {target: label}\nmodel: {type: random-forest}"
    project = Project.load(make_project(text))
    x = np.linspace(-1, 1, 40)
    frame = pl.DataFrame({"x": x, "colour": ["a", "b"] * 20, "label": (x > 0).astype(int)})
    RandomForestModel(target="label", params={"n_estimators": 3}).fit(frame).save(tmp_path / "m")
    run_id = tracking_client(project).create_run(ensure_experiment(project)).info.run_id
    lineage = Lineage(model_type="random-forest")
    example = frame.drop("label").head(3).to_pandas()
    version = register_version(project, run_id, tmp_path / "m", lineage=lineage, input_example=example)
    info = mlflow.models.get_model_info(f"models:/{project.model_name}/{version.version}")
    assert info.signature is not None
    assert info.signature.inputs.input_names() == ["x", "colour"]
    assert set(info.signature.outputs.input_names()) == {"0", "1", "prediction"}
    assert info.saved_input_example_info is not None


def test_a_recommender_version_takes_k_as_a_signature_parameter(make_project, tmp_path):
    import mlflow.models
    import mlflow.pyfunc

    from conveyor.config import ModelType
    from conveyor.models import make_model

    project = Project.load(make_project("project: {name: recs, template: recommender}"))
    users, items = np.arange(300) % 30, (np.arange(300) * 7) % 25
    start = datetime(2025, 1, 1)
    interactions = pl.DataFrame(
        {"user_id": users, "item_id": items, "timestamp": [start + timedelta(hours=h) for h in range(300)]}
    )
    make_model(ModelType.ALS, {}, project.settings).fit(interactions).save(tmp_path / "als")
    run_id = tracking_client(project).create_run(ensure_experiment(project)).info.run_id
    example = pl.DataFrame({"user_id": [0, 1, 2]}).to_pandas()
    version = register_version(
        project, run_id, tmp_path / "als", lineage=Lineage(model_type="als"), input_example=example
    )
    uri = f"models:/{project.model_name}/{version.version}"
    signature = mlflow.models.get_model_info(uri).signature
    assert signature.inputs.input_names() == ["user_id"]
    assert signature.params.to_dict() == [{"name": "k", "type": "long", "default": 10, "shape": None}]
    answer = mlflow.pyfunc.load_model(uri).predict(example, params={"k": 3})
    assert [len(items) for items in answer["items"]] == [3, 3, 3]
