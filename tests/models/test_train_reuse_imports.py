"""A reused run answers without MLflow: the background opener only starts when training."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conveyor.telemetry import TELEMETRY_OPT_OUT

PROBE = """
import json, sys
from conveyor.cli._app import main
code = main(["--project", sys.argv[1], "train", "--json"])
print(json.dumps({"code": code, "mlflow": "mlflow" in sys.modules}), file=sys.stderr)
"""


@pytest.mark.xdist_group("models-cli")
def test_reused_run_never_imports_mlflow(cli, recommender_project):
    first = cli("--project", recommender_project, "train", "--json")
    assert first.exit_code == 0, first.stderr
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(recommender_project)],
        capture_output=True,
        text=True,
        env={**os.environ, **TELEMETRY_OPT_OUT},
        timeout=120,
    )
    assert json.loads(done.stdout)["reused"] is True
    probe = json.loads(done.stderr.strip().splitlines()[-1])
    assert probe == {"code": 0, "mlflow": False}
