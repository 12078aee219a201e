"""S3 dying while a version is registered, for real: no registered version may point at missing files.

The registry is a real ``mlflow server`` (runs and registry in PostgreSQL) whose artifact store is
this module's own moto S3 server, killed with SIGKILL while ``register`` uploads a version through
the server's proxy. The registration fails in one line naming the artifact store, no version is
created (MLflow registers a version only after its files are uploaded), a deploy has nothing to
deploy, and once S3 is back the same registration gives a version a fresh runner fetches and
verifies — and while S3 is down again, a runner that has not fetched it yet stops in one line.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import yaml

from conveyor.errors import ServiceError
from conveyor.models import ImplicitRecommender
from conveyor.project import Project
from conveyor.registry import (
    Lineage,
    ensure_experiment,
    get_version,
    list_versions,
    load_verified,
    register_version,
)
from services import S3, MlflowServer, Postgres, running_mlflow_server, running_s3
from support import shop_interactions

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.xdist_group("services")]

BUCKET = "artifacts"
RETRIES = 1


@pytest.fixture(scope="module")
def registry(postgres: Postgres) -> Iterator[tuple[S3, MlflowServer]]:
    """A moto S3 of this module's own (the session's is never killed) behind an ``mlflow server``."""
    with running_s3() as s3:
        s3.create_bucket(BUCKET)
        backend = postgres.create_database(f"mlflow_{uuid.uuid4().hex[:8]}")
        backend = backend.replace("postgresql://", "postgresql+psycopg://", 1)
        with running_mlflow_server(backend, f"s3://{BUCKET}/mlflow", s3.env) as server:
            yield s3, server


def _project(root: Path, server: MlflowServer) -> Project:
    root.mkdir(parents=True)
    config = {
        "project": {"name": f"shop-{uuid.uuid4().hex[:6]}"},
        "model": {"k": 5},
        "registry": {"tracking_uri": server.url, "timeout_seconds": 30, "retries": RETRIES},
    }
    (root / "conveyor.yaml").write_text(yaml.safe_dump(config))
    return Project.load(root)


def test_s3_killed_during_register_creates_no_version_and_the_retry_registers_a_whole_one(
    registry: tuple[S3, MlflowServer], tmp_path: Path, cli
) -> None:
    s3, server = registry
    assert s3.service is not None
    project = _project(tmp_path / "shop", server)
    data = shop_interactions()
    model = ImplicitRecommender(params={"factors": 8, "iterations": 3}, seed=1).fit(data)
    model_dir = tmp_path / "shop" / "model"
    model.save(model_dir)
    with mlflow.start_run(experiment_id=ensure_experiment(project)) as run:
        pass  # the training run `register` adds the version to

    s3.service.kill()
    with pytest.raises(ServiceError) as caught:
        register_version(project, run.info.run_id, model_dir, lineage=Lineage(model_type="als"))
    message = str(caught.value)
    failed = re.escape(f"model registry '{server.url}': registering run {run.info.run_id} failed:")
    attempts = f"{RETRIES + 1} attempts"
    # the server answers 5xx, or — still reading the upload when its store failed — drops the connection
    outcome = r"(answered HTTP 5\d\d|dropped the connection)"
    expected = rf"{failed} the server's artifact store {outcome} \({attempts}\)"
    assert re.fullmatch(expected, message), message
    for secret in (s3.secret_key, s3.access_key):
        assert secret not in message
    assert list_versions(project) == []  # no version points at the files that never arrived
    refused = cli("--project", project.root, "deploy", "--env", "staging", "--json")
    assert refused.exit_code == 2
    assert refused.json()["error"]["message"] == (
        f"no registered version of model {project.model_name!r}: run `conveyor register` first"
    )

    s3.service.restart()  # moto keeps its buckets in memory: the bucket comes back empty
    s3.create_bucket(BUCKET)
    version = register_version(project, run.info.run_id, model_dir, lineage=Lineage(model_type="als"))
    assert [v.version for v in list_versions(project)] == [version.version] == ["1"]

    # a fresh runner fetches the version's files from S3 and verifies them before loading
    fresh = tmp_path / "fresh"
    shutil.copytree(project.root, fresh, ignore=shutil.ignore_patterns(".conveyor", "model"))
    loaded = load_verified(get_version(Project.load(fresh), "1"))
    assert isinstance(loaded, ImplicitRecommender)
    users = list(range(10))
    assert [r.items for r in loaded.recommend(users, 5)] == [r.items for r in model.recommend(users, 5)]

    # S3 dies again: a runner that has not fetched the version yet cannot resolve it — one line
    s3.service.kill()
    another = tmp_path / "another"
    shutil.copytree(project.root, another, ignore=shutil.ignore_patterns(".conveyor", "model"))
    refused = cli("--project", another, "deploy", "--env", "staging", "--version", "1", "--json")
    assert refused.exit_code == 1
    error = refused.json()["error"]
    assert error["type"] == "ServiceError"
    assert re.fullmatch(
        rf"model registry: fetching mlflow-artifacts:/\S+/MLmodel failed: "
        rf"the server's artifact store {outcome} \({attempts}\)",
        error["message"],
    ), error["message"]
    assert "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    for secret in (s3.secret_key, s3.access_key):
        assert secret not in refused.stdout + refused.stderr
