"""Malformed deploy commands answer with one line and exit 2, before touching any server."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["deploy", "--env", "qa"], "no such environment"),
        (["deploy", "--env", "production", "--steps", "10,5,100"], "--steps"),
        (["deploy", "--env", "production", "--steps", "ten"], "--steps"),
        (["deploy", "--env", "production", "--strategy", "shadow"], "shadow"),
        (["env", "start", "--env", "qa"], "no such environment"),
        (["env", "logs", "--env", "production", "--lines", "0"], "--lines"),
        (["deploy", "--env", "production", "--strategy", "canary", "--steps", "100"], "a step below 100"),
        (["deploy", "--env", "production", "--strategy", "ab"], "ab start"),
        (["ab", "status"], "no A/B test runs"),
        (["ab", "start", "--variant-ratio", "1.5"], "--variant-ratio"),
    ],
)
def test_bad_usage_exits_2_with_one_line(cli, make_project, args, match):
    root = make_project("project: {name: shop}\n")
    result = cli("--project", root, *args, "--json")
    assert result.exit_code == 2, result.stderr
    assert match in result.json()["error"]["message"]
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_configured_single_step_canary_is_refused(cli, make_project):
    root = make_project("project: {name: shop}\ndeploy: {strategy: canary, canary: {steps: [100]}}\n")
    result = cli("--project", root, "deploy", "--env", "production", "--json")
    assert result.exit_code == 2, result.stderr
    assert "deploy.canary.steps 100: a canary needs a step below 100 %" in result.json()["error"]["message"]
