"""A separate package adds a part through the entry points, and Conveyor uses it like a built-in.

The plugin is a real distribution on sys.path (a package plus its ``.dist-info`` with
``entry_points.txt``, what ``pip install`` writes), used by ``conveyor`` in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.errors import ExtensionError
from conveyor.extensions import ALERT_CHANNELS

pytestmark = pytest.mark.xdist_group("monitoring-receiver")

PAGER_MODULE = '''
class Pager:
    """A toy paging service: its receiver wants {"summary", "severity", "dedup_key"}."""

    def payload(self, alert):
        return {"summary": alert.title, "severity": "critical", "dedup_key": alert.idempotency_key}


PAGER = Pager()
NOT_A_CHANNEL = 42
'''


def _plugin(root: Path, entries: dict[str, str]) -> Path:
    """Write the toy distribution ``toy-pager`` under ``root`` and return the folder to put on sys.path."""
    site = root / "site"
    (site / "toy_pager").mkdir(parents=True)
    (site / "toy_pager" / "__init__.py").write_text(PAGER_MODULE)
    info = site / "toy_pager-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-pager\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[conveyor.alert_channels]\n{lines}\n")
    return site


def _conveyor(site: Path, root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env, "PYTHONPATH": path},
    )


def test_a_plugin_alert_channel_is_configured_listed_and_delivered(tmp_path, receiver):
    site = _plugin(tmp_path, {"pager": "toy_pager:PAGER"})
    project = tmp_path / "proj"
    project.mkdir()
    (project / "conveyor.yaml").write_text(
        "project: {name: plug}\nalerts:\n  channels:\n    - {name: oncall, kind: pager, url_env: PAGER_URL}\n"
    )
    env = {"PAGER_URL": receiver.url("/pager")}

    schema = _conveyor(site, project, "config", "schema", env=env)
    assert schema.returncode == 0, schema.stderr
    kinds = json.loads(schema.stdout)["$defs"]["AlertChannel"]["properties"]["kind"]["enum"]
    assert kinds == ["discord", "pager", "slack", "webhook"]

    sent = _conveyor(site, project, "alert", "test", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    assert [d["kind"] for d in json.loads(sent.stdout)["deliveries"]] == ["pager"]
    (delivery,) = receiver.at("/pager")
    body = delivery.json()
    assert body["severity"] == "critical"
    assert body["summary"] == "Conveyor test alert"
    assert body["dedup_key"] == delivery.headers["idempotency-key"].strip('"')


def test_without_the_plugin_the_kind_is_refused_in_one_line(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "conveyor.yaml").write_text("alerts:\n  channels:\n    - {name: o, kind: pager, url_env: U}\n")
    done = _conveyor(tmp_path, project, "config", "check", env={})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"conveyor: ConfigError: {project / 'conveyor.yaml'}: alerts.channels.0.kind: unknown alert channel "
        "'pager' (installed: discord, slack, webhook; a plugin package adds one in the entry-point group "
        "'conveyor.alert_channels')"
    ]


def test_a_broken_plugin_is_named_with_its_fault(tmp_path, monkeypatch):
    site = _plugin(tmp_path, {"nothing": "toy_pager:NOT_A_CHANNEL", "gone": "toy_pager:MISSING"})
    monkeypatch.syspath_prepend(str(site))
    from conveyor.monitoring import build_payload

    assert {"nothing", "gone"} <= set(ALERT_CHANNELS.names())
    with pytest.raises(
        ExtensionError, match=r"^alert channel 'gone' from toy_pager:MISSING cannot be loaded: "
    ):
        ALERT_CHANNELS.load("gone")
    with pytest.raises(ExtensionError, match=r"^alert channel 'nothing' is a int, not an alert channel"):
        build_payload("nothing", None)  # type: ignore[arg-type]
