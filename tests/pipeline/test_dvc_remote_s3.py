"""A team's DVC remote in S3: `init --remote s3://…` pushes the data there; a fresh clone pulls it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conveyor.pipeline import conveyor_program
from services import S3

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("services")]

GIT = ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com"]


def test_init_pushes_to_the_s3_remote_and_a_second_clone_pulls_the_same_bytes(s3: S3, tmp_path) -> None:
    bucket = s3.create_bucket("dvc-remote")
    env = {**os.environ, **s3.env, "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    root = tmp_path / "runner-a"
    init = subprocess.run(
        [*conveyor_program(), "init", str(root), "--template", "classifier", "--remote", f"{bucket}/team",
         "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["dvc_remote"] == f"{bucket}/team"
    config = (root / ".dvc" / "config").read_text()
    assert f"url = {bucket}/team" in config
    assert f"endpointurl = {s3.endpoint_url}" in config  # from AWS_ENDPOINT_URL_S3
    assert "remote = storage" in config
    assert s3.secret_key not in config + init.stdout + init.stderr
    assert s3.access_key not in config
    assert not (root / ".dvc-remote").exists()
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket="dvc-remote").get("Contents", [])]
    assert keys
    assert all(k.startswith("team/") for k in keys)

    subprocess.run([*GIT, "-C", str(root), "add", "-A"], check=True, capture_output=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-qm", "init"], check=True, capture_output=True)
    clone = tmp_path / "runner-b"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True, capture_output=True)
    data = sorted(p.relative_to(root) for p in (root / "data" / "raw").iterdir() if p.is_file())
    assert data
    assert not any((clone / p).exists() for p in data)  # git holds the .dvc files, not the data
    pulled = subprocess.run(
        [sys.executable, "-m", "dvc", "pull"], cwd=clone, env=env, capture_output=True, text=True, timeout=300
    )
    assert pulled.returncode == 0, pulled.stderr
    assert [(clone / p).read_bytes() for p in data] == [(root / p).read_bytes() for p in data]


def test_data_remote_moves_an_existing_project_to_s3_and_refuses_without_the_key(s3: S3, tmp_path) -> None:
    s3.create_bucket("dvc-later")
    env = {**os.environ, **s3.env, "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    root = tmp_path / "laptop"
    conveyor = [*conveyor_program(), "--project", str(root)]
    init = subprocess.run(
        [*conveyor_program(), "init", str(root), "--template", "classifier", "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    refused = subprocess.run(
        [*conveyor, "data", "remote"], env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert "data.remote is not set" in line

    text = (
        (root / "conveyor.yaml").read_text().replace("data:\n", "data:\n  remote: s3://dvc-later/team\n", 1)
    )
    (root / "conveyor.yaml").write_text(text)
    moved = subprocess.run(
        [*conveyor, "data", "remote", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout) == {"ok": True, "remote": "s3://dvc-later/team", "pushed": True}
    assert "remote = storage" in (root / ".dvc" / "config").read_text()
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket="dvc-later").get("Contents", [])]
    assert keys
    assert all(k.startswith("team/") for k in keys)
