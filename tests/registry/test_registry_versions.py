"""Versions in the real MLflow SQLite store: lineage, aliases, checksum before load, pyfunc flavour."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from conveyor.errors import IntegrityError
from conveyor.models import RandomForestModel
from conveyor.project import Project
from conveyor.registry import (
    Lineage,
    delete_alias,
    directory_sha256,
    ensure_experiment,
    get_version,
    get_version_by_alias,
    load_verified,
    register_version,
    set_alias,
    tracking_client,
)


def _classifier_project(root):
    root.mkdir()
    (root / "conveyor.yaml").write_text(
        "project: {name: churn, template: classifier}\ndata: {target: label}\nmodel: {type: random-forest}\n"
    )
    return Project.load(root)


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("registry")
    project = _classifier_project(tmp_path / "proj")
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    data = pl.DataFrame({"x": x, "colour": rng.choice(["a", "b"], 200), "label": (x > 0).astype(int)})
    model = RandomForestModel(target="label", params={"n_estimators": 5}).fit(data)
    model_dir = tmp_path / "model"
    model.save(model_dir)
    client = tracking_client(project)
    run_id = client.create_run(ensure_experiment(project)).info.run_id
    client.set_terminated(run_id)
    lineage = Lineage(model_type="random-forest", data_fingerprint="md5:abc", git_commit="deadbeef")
    version = register_version(project, run_id, model_dir, lineage=lineage)
    return project, version, model, data


def test_registered_version_carries_lineage_checksum_and_candidate_alias(registered):
    project, version, model, data = registered
    assert version.version == "1"
    assert version.aliases == ("candidate",)
    assert version.sha256 == directory_sha256(version.source_dir)
    assert version.lineage.data_fingerprint == "md5:abc"
    assert version.lineage.git_commit == "deadbeef"
    assert version.lineage.run_id == version.run_id
    loaded = load_verified(get_version(project, 1))
    assert np.array_equal(loaded.predict_proba(data), model.predict_proba(data))


def test_aliases_move_and_disappear(registered):
    project, version, _, _ = registered
    assert get_version_by_alias(project, "production") is None
    set_alias(project, "production", version.version)
    assert get_version_by_alias(project, "production").version == "1"
    delete_alias(project, "production")
    delete_alias(project, "production")  # deleting a missing alias is fine
    assert get_version_by_alias(project, "production") is None


def test_a_tampered_artifact_is_refused(registered):
    project, version, _, _ = registered
    target = next(p for p in version.source_dir.iterdir() if p.name.endswith(".joblib"))
    original = target.read_bytes()
    target.write_bytes(original + b"\0")
    try:
        with pytest.raises(IntegrityError, match="checksum mismatch"):
            load_verified(get_version_by_alias(project, "candidate"))
    finally:
        target.write_bytes(original)


def test_mlflow_pyfunc_loads_the_registered_version(registered):
    import mlflow.pyfunc

    project, version, model, data = registered
    pyfunc = mlflow.pyfunc.load_model(f"models:/{project.model_name}/{version.version}")
    out = pyfunc.predict(data.drop("label").head(5).to_pandas())
    assert list(out.columns) == ["0", "1", "prediction"]
    assert np.allclose(out[["0", "1"]].to_numpy(), model.predict_proba(data.head(5)))


def test_mlflow_pyfunc_runs_the_model_once_per_call(registered):
    """The labels come from the same probabilities (as `conveyor serve` does): one forest pass per
    call, so `mlflow models serve` of a registered version does the same model work per request."""
    import mlflow.pyfunc

    project, version, model, data = registered
    pyfunc = mlflow.pyfunc.load_model(f"models:/{project.model_name}/{version.version}")
    inner = pyfunc.unwrap_python_model().model
    calls = []
    original = inner.predict_proba

    def counting(rows):
        calls.append(rows.height)
        return original(rows)

    inner.predict_proba = counting
    out = pyfunc.predict(data.drop("label").head(7).to_pandas())
    assert calls == [7]
    assert out["prediction"].tolist() == model.predict(data.head(7)).tolist()


def test_a_registration_cut_after_the_version_exists_is_finished_by_the_retry_not_duplicated(
    tmp_path, monkeypatch
):
    # MLflow creates the version inside log_model and takes its tags and alias in later calls: the
    # registry failing between them (here: refusing the alias once) must not make a retry add a
    # second version of the same run
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from conveyor.errors import ServiceError
    from conveyor.registry import list_versions

    project = _classifier_project(tmp_path / "proj")
    rng = np.random.default_rng(1)
    x = rng.normal(size=100)
    data = pl.DataFrame({"x": x, "label": (x > 0).astype(int)})
    model_dir = tmp_path / "model"
    RandomForestModel(target="label", params={"n_estimators": 3}).fit(data).save(model_dir)
    client = tracking_client(project)
    run_id = client.create_run(ensure_experiment(project)).info.run_id
    lineage = Lineage(model_type="random-forest", data_fingerprint="md5:abc")

    def registry_gone(*args, **kwargs):
        raise MlflowException("the database went away", error_code="INTERNAL_ERROR")

    with monkeypatch.context() as patched:
        patched.setattr(MlflowClient, "set_registered_model_alias", registry_gone)
        with pytest.raises(ServiceError, match=f"registering run {run_id} failed"):
            register_version(project, run_id, model_dir, lineage=lineage)
    [half] = list_versions(project)
    assert (half.version, half.aliases) == ("1", ())  # created, never given its alias

    again = register_version(project, run_id, model_dir, lineage=lineage)
    assert [v.version for v in list_versions(project)] == ["1"]
    assert (again.version, again.aliases) == ("1", ("candidate",))
    assert again.sha256 == directory_sha256(model_dir)
    assert again.lineage.data_fingerprint == "md5:abc"

    # the same run with other files is refused: one run, one model
    other = tmp_path / "other"
    RandomForestModel(target="label", params={"n_estimators": 4}).fit(data).save(other)
    with pytest.raises(IntegrityError, match=f"run {run_id} is already registered as version 1"):
        register_version(project, run_id, other, lineage=lineage)
    # a new run of the same files is a new version, as before
    second_run = client.create_run(ensure_experiment(project)).info.run_id
    assert register_version(project, second_run, model_dir, lineage=lineage).version == "2"
