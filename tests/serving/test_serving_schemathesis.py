"""Schemathesis fuzzes the OpenAPI document of a live server: zero server errors (5xx)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from serving_support import ToyClassifier, ToyRecommender, live_server

from conveyor.config import Settings
from conveyor.models import Model
from conveyor.serving import StaticLoader, create_app

# servers bind free ports, so the fuzzing may run beside the other serving tests (own group)
pytestmark = [pytest.mark.xdist_group("serving-fuzz"), pytest.mark.slow]

TOKEN = "fuzz-admin-token"


def _schemathesis() -> list[str]:
    found = Path(sys.executable).with_name("schemathesis")
    if found.exists():
        return [str(found)]
    on_path = shutil.which("schemathesis")
    if on_path is None:
        pytest.skip("schemathesis is not installed")
    return [on_path]


@pytest.mark.parametrize("kind", ["classifier", "recommender"])
def test_fuzzing_finds_no_server_error(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_ADMIN_TOKEN", TOKEN)
    if kind == "classifier":
        settings = Settings.model_validate(
            {
                "project": {"template": "classifier"},
                "model": {"type": "random-forest"},
                "serving": {"max_rows_per_request": 50},
            }
        )
        models: dict[str, Model] = {"1": ToyClassifier(), "2": ToyClassifier(shift=0.2)}
    else:
        settings = Settings()
        models = {"1": ToyRecommender(), "2": ToyRecommender()}
    # the recommender server shares every operation but its two model endpoints with the classifier's
    only = [] if kind == "classifier" else ["--include-path-regex", "^/(recommend|feedback)$"]
    app = create_app(settings, loader=StaticLoader(models, initial=["1"]), log_dir=tmp_path / "log")
    with live_server(app) as url:
        done = subprocess.run(
            [
                *_schemathesis(),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "10",
                "--workers",
                "2",
                *only,
                "--seed",
                "7",
                "--generation-database",
                "none",
                "--phases",
                "examples,coverage,fuzzing",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
