"""The command-line contract: every subcommand exists, exit codes, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CONTRACT = [
    "init", "config", "schema", "validate", "drift", "train", "evaluate", "register", "serve",
    "deploy", "smoke", "rollback", "ab", "status", "monitor", "alert", "run", "workflows",
    "report", "data", "demo",
]  # fmt: skip


def test_help_lists_every_subcommand_of_the_contract(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for name in CONTRACT:
        assert f" {name} " in result.stdout, f"`conveyor --help` does not list {name}"


@pytest.mark.parametrize("name", CONTRACT)
def test_every_subcommand_has_help(cli, name):
    result = cli(name, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_unknown_command_is_a_usage_error_in_one_line(cli):
    result = cli("no-such-command")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_option_is_a_usage_error(cli):
    result = cli("status", "--no-such-flag")
    assert result.exit_code == 2
    assert "--no-such-flag" in result.stderr


def test_json_prints_exactly_one_object_and_nothing_on_stderr(cli, make_project, monkeypatch):
    monkeypatch.delenv("CONVEYOR_STATE_URI", raising=False)
    root = make_project("project:\n  name: shop\n")
    result = cli("config", "check", "--project", str(root), "--json")
    assert result.exit_code == 0
    assert result.json() == {
        "ok": True,
        "file": str(root.resolve() / "conveyor.yaml"),
        "state": {
            "kind": "local",
            "location": str(root.resolve() / ".conveyor"),
            "chosen_by": "CONVEYOR_STATE_URI is not set",
        },
    }
    assert result.stderr == ""


def test_command_outside_a_project_names_the_problem(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("config", "show")
    assert result.exit_code == 2
    assert "no conveyor.yaml" in result.stderr


def test_project_is_found_from_a_subfolder(cli, make_project, monkeypatch):
    root = make_project("project:\n  name: shop\n")
    sub = root / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    result = cli("config", "show", "--json")
    assert result.exit_code == 0
    assert result.json()["project"]["name"] == "shop"


def test_project_option_before_or_after_the_command(cli, make_project):
    root = make_project("project:\n  name: shop\n")
    assert cli("--project", str(root), "config", "show", "--json").json()["project"]["name"] == "shop"
    assert cli("config", "show", "--project", str(root), "--json").json()["project"]["name"] == "shop"


def test_project_option_pointing_at_a_folder_without_config(cli, tmp_path):
    result = cli("config", "check", "--project", str(tmp_path))
    assert result.exit_code == 2
    assert "--project" in result.stderr


def test_console_script_runs_in_a_fresh_process():
    exe = Path(sys.executable).with_name("conveyor")
    proc = subprocess.run([str(exe), "config", "schema"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["title"] == "conveyor.yaml"


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("conveyor ")


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--size", "huge"], "--size 'huge'"), (["--workdir", "/proc/no-such-folder"], "--workdir")],
)
def test_demo_bad_options_exit_2_in_one_line(cli, args, words):
    result = cli("demo", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert words in lines[-1]
    assert "Traceback" not in result.stderr
