"""A deployment strategy from a separate package deploys a registered version through the registry.

The toy strategy ``smoke-then-switch`` (tests/extensions/toy_plugin) smoke-tests the candidate on
a side server even in staging (where ``direct`` does not) and then switches at once: the result,
the ledger and the live server show that Conveyor ran it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from plugin_site import conveyor, install_toy_plugin

from support import free_port, write_registered_shop

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("extensions")]

LAST_DEPLOY = """
import sys
from conveyor.deploy import Ledger
from conveyor.project import Project
last = [e for e in Ledger.of(Project.load(sys.argv[1])).entries("staging") if e.action == "deploy"][-1]
print(last.action, last.outcome, last.version, last.strategy)
"""


def test_a_plugin_strategy_is_listed_configured_and_deploys(tmp_path):
    site = install_toy_plugin(tmp_path)
    root = tmp_path / "shop"
    root.mkdir()
    port = free_port()
    config = (
        "project: {name: shop}\nmodel: {k: 5}\n"
        f"deploy:\n  strategy: smoke-then-switch\n  environments:\n    staging: {{port: {port}}}\n"
        f"    production: {{port: {free_port()}}}\n"
    )
    write_registered_shop(root, config.replace("strategy: smoke-then-switch", "strategy: blue-green"))
    (root / "conveyor.yaml").write_text(config)  # valid with the plugin installed (this process has not)

    schema = json.loads(conveyor(site, root, "config", "schema").stdout)
    assert schema["$defs"]["Strategy"]["enum"] == ["blue-green", "canary", "rolling", "smoke-then-switch"]
    assert (
        "[direct|blue-green|canary|rolling|smoke-then-switch]"
        in conveyor(site, root, "deploy", "--help").stdout
    )

    try:
        done = conveyor(site, root, "deploy", "--env", "staging", "--strategy", "smoke-then-switch",
                        "--version", "2", "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert (result["strategy"], result["version"], result["switched_after"]) == (
            "smoke-then-switch",
            "2",
            "smoke test",
        )
        assert result["smoke"]["ok"] is True  # direct would not have smoke-tested in staging
        assert "after its smoke test" in done.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/version", timeout=30).json()["primary"] == "2"
        ledger = subprocess.run(
            [sys.executable, "-c", LAST_DEPLOY, str(root)], capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(site)}, check=True,
        ).stdout.split()  # fmt: skip
        assert ledger == ["deploy", "ok", "2", "smoke-then-switch"]
    finally:
        conveyor(site, root, "env", "stop", "--env", "staging")

    # without the plugin, the configured name is refused in one line
    refused = conveyor(None, root, "config", "check")
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "deploy.strategy: Input should be 'blue-green', 'canary' or 'rolling'" in line
