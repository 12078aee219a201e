"""The rollouts page: each canary step's analysis, recorded in the ledger, equals the CLI's --json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support_ui import cells, get, problems

from conveyor.deploy import EnvironmentProcess, Ledger
from conveyor.project import Project
from conveyor.ui import create_ui_app

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.slow]
LOAD_CLIENT = Path(__file__).parents[1] / "deploy" / "load_client.py"


def _canary(cli, root: Path, version: str, out: Path) -> dict:
    url = EnvironmentProcess(Project.load(root), "production").base_url
    # the load runs until killed below (900 s only guards a test that dies), however long the canary takes
    load = subprocess.Popen([sys.executable, str(LOAD_CLIENT), url, "900", "120", str(out), f"{out}.stop"])
    try:
        done = cli("--project", root, "deploy", "--env", "production", "--strategy", "canary",
                   "--version", version, "--steps", "10,50,100", "--interval", "4", "--json")  # fmt: skip
    finally:
        load.kill()
        load.wait()
    return {"exit_code": done.exit_code, **done.json()}


def test_each_canary_step_shows_its_analysis_as_the_deploy_json(cli, deploy_project: Path, tmp_path) -> None:
    root = deploy_project
    assert cli("--project", root, "deploy", "--env", "production", "--version", "1").exit_code == 0
    promoted = _canary(cli, root, "2", tmp_path / "a.json")
    assert promoted["exit_code"] == 0, promoted
    degraded = _canary(cli, root, "4", tmp_path / "b.json")  # version 4 degrades after its smoke test
    assert degraded["exit_code"] == 1
    assert degraded["outcome"] == "rolled-back"

    # the ledger holds one canary-analysis entry per analysed step, its details the --json step
    ledger = [e for e in Ledger.of(Project.load(root)).entries("production") if e.action == "canary-analysis"]
    assert [(e.version, e.outcome) for e in ledger][-len(degraded["steps"]) :] == [
        ("4", s["verdict"]) for s in degraded["steps"]
    ]
    assert [e.details for e in ledger] == promoted["steps"] + degraded["steps"]

    page = get(TestClient(create_ui_app(Project.load(root))), "/rollouts")
    production = page.split('id="canary-production"')[1].split('id="ab"')[0]
    newest, older = production.split("data-canary=")[1:3]
    assert newest.startswith('"4"')
    assert older.startswith('"2"')
    assert '<span class="badge bad" data-outcome>rolled-back</span>' in newest
    assert '<span class="badge ok" data-outcome>promoted</span>' in older
    for html, body in ((older, promoted), (newest, degraded)):
        for step in body["steps"]:
            row = cells(html, "data-step", str(step["step"]))
            stable, candidate = step["arms"]["stable"], step["arms"]["candidate"]
            assert row[1] == step["verdict"]
            assert row[2] == f"{stable['users']} / {candidate['users']}"
            assert row[3] == f"{stable['requests']} / {candidate['requests']}"
            low, high = candidate["error_rate_ci"]
            assert row[5] == f"{candidate['error_rate']:.3g} [{low:.3g}, {high:.3g}]"
            assert row[7].split(" ")[0] == f"{stable['p99_ms']:.4g}"
            assert row[10] == step["reason"]
        assert f"<code data-salt>{body['salt']}</code>" in html  # one sticky assignment per rollout
    assert len(older.split("data-step=")) - 1 == 2  # the steps below 100 %: 10 and 50
    assert problems(production) == []
