"""The shared-store services of tests/services.py are the real thing and answer as such."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import psycopg
import pytest

from services import S3, MlflowServer, Postgres

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("services")]


def test_postgres_is_a_real_server_that_wants_its_password(postgres: Postgres) -> None:
    uri = postgres.create_database("svc_check")
    with psycopg.connect(uri) as conn:
        assert conn.execute("select 1 + 1").fetchone() == (2,)
        assert conn.info.server_version >= 150000
    wrong = uri.replace(postgres.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong)


def test_s3_round_trips_an_object(s3: S3) -> None:
    s3.create_bucket("svc-check")
    client = s3.client()
    client.put_object(Bucket="svc-check", Key="a/b.txt", Body=b"hello")
    assert client.get_object(Bucket="svc-check", Key="a/b.txt")["Body"].read() == b"hello"


def test_mlflow_server_keeps_runs_in_postgres_and_artifacts_in_s3(
    mlflow_server: MlflowServer, s3: S3, postgres: Postgres, tmp_path
) -> None:
    # a separate process, as a user's command would be: the client only knows the server's URL
    script = (
        f"import mlflow; mlflow.set_tracking_uri({mlflow_server.url!r}); mlflow.set_experiment('svc')\n"
        "with mlflow.start_run() as r:\n"
        "    mlflow.log_metric('m', 1.5); mlflow.log_text('x', 'note.txt'); print('RUN=' + r.info.run_id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        env={"MLFLOW_DISABLE_TELEMETRY": "true", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    run_id = next(line[4:] for line in done.stdout.splitlines() if line.startswith("RUN="))
    run = mlflow.MlflowClient(mlflow_server.url).get_run(run_id)
    assert run.data.metrics == {"m": 1.5}
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket="mlflow").get("Contents", [])]
    assert any(k.endswith(f"{run_id}/artifacts/note.txt") for k in keys), keys
    with psycopg.connect(postgres.uri("mlflow")) as conn:
        assert conn.execute("select count(*) from runs where run_uuid = %s", (run_id,)).fetchone() == (1,)
