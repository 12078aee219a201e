"""`conveyor canary promote|abort` with nothing to act on: one line each, exit 2, the ledger untouched."""

from __future__ import annotations

import pytest

from conveyor.deploy import Ledger
from conveyor.project import Project


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "--why", "ship it"], "no canary is running in 'production': nothing to promote"),
        (["abort", "--why", "stop"], "no rollout is running in 'production': nothing to abort"),
        (["abort", "--env", "staging", "--why", "stop"],
         "no rollout is running in 'staging': nothing to abort"),
        (["promote", "--why", "  "], "--why: give the reason for this action (it goes into the ledger)"),
        (["abort", "--why", ""], "--why: give the reason for this action (it goes into the ledger)"),
        (["promote", "--env", "moon", "--why", "x"],
         "--env 'moon': no such environment in deploy.environments (configured: production, staging)"),
    ],
)  # fmt: skip
def test_promote_and_abort_refuse_in_one_line(cli, make_project, args, message):
    root = make_project("project: {name: shop}\n")
    result = cli("--project", root, "canary", *args, "--json")
    assert result.exit_code == 2, result.stderr
    assert result.json()["error"]["message"] == message
    assert len(result.stderr.strip().splitlines()) == 1
    assert Ledger.of(Project.load(root)).entries() == []
