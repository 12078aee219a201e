"""`conveyor ui` after the demo shows the demo's weeks: the A/B test, the drift, the canary and the
switches of production with its rollback drill — the numbers equal the demo steps' own JSON. In
Chromium, every page passes axe-core and is photographed (CONVEYOR_UI_SCREENSHOTS=docs rewrites
docs/ui-rollouts.png, ui-models.png and ui-data.png)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest
from support_ui import cells, launch, problems, severe_violations, start_ui, sync_playwright

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]
PAGES = ("environments", "rollouts", "models", "data")
SHOTS = ("rollouts", "models", "data")  # docs/ui-environments.png is the live one of test_ui_browser


def _step(summary, phase: str, name: str):
    found = [s for s in summary.steps if s.phase == phase and s.name == name]
    assert found, f"no step {phase}/{name}"
    return found[-1]


@pytest.fixture(scope="module")
def demo_ui(demo_summary):
    process, url = start_ui(Path(demo_summary.project))
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _get(url: str) -> str:
    answer = httpx.get(url, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_page_shows_the_demos_ab_test_canary_drift_and_switches(demo_summary, demo_ui) -> None:
    assert demo_summary.ok, demo_summary.unexpected
    rollouts = _get(f"{demo_ui}/rollouts")
    # week 2: the A/B test, concluded on users
    conclude = _step(demo_summary, "week 2", "ab conclude").payload
    row = cells(rollouts, "data-experiment", conclude["experiment"]["id"])
    assert row[2] == conclude["outcome"]
    assert row[3] == str(conclude["serving"])
    test = conclude["decision"]["test"]
    assert row[4] == f"{test['control_users']} / {test['variant_users']}"
    assert row[7] == f"{test['p_value']:.3g}"
    # week 3: the canary that promoted the retrained version, step by step
    canary = _step(demo_summary, "week 3", "deploy canary").payload
    production = rollouts.split('id="canary-production"')[1].split('id="ab"')[0]
    newest = production.split("data-canary=")[1]
    assert newest.startswith(f'"{canary["version"]}"')
    assert '<span class="badge ok" data-outcome>promoted</span>' in newest
    for step in canary["steps"]:
        row = cells(newest, "data-step", str(step["step"]))
        assert row[1] == step["verdict"] == "pass"
        arms = step["arms"]
        assert row[2] == f"{arms['stable']['users']} / {arms['candidate']['users']}"
        assert row[3] == f"{arms['stable']['requests']} / {arms['candidate']['requests']}"
    assert f"<code data-salt>{canary['salt']}</code>" in newest

    # week 3: the drift the monitor found, per column, with its trend over the runs
    data = _get(f"{demo_ui}/data")
    live = data.split('id="data-production"')[1].split('data-drift="input_drift"')[1]
    week3 = _step(demo_summary, "week 3", "monitor").payload
    drift = {c["name"]: c for c in week3["checks"]}["input_drift"]
    assert drift["status"] == "fail"
    tested = [
        s for s in demo_summary.steps
        if s.name == "monitor" and {c["name"]: c for c in s.payload.get("checks", [])}
        .get("input_drift", {}).get("status") in ("pass", "fail")
    ]  # fmt: skip
    for name in drift["details"]["drifted_columns"]:
        column = drift["details"]["columns"][name]
        row = cells(live, "data-column", name)
        assert row[3] == f"{column['statistic']:.4g}"
        assert row[7] == "yes"
        chart = live.split(f'data-chart="input_drift:{name}"')[1].split("</figure>")[0]
        assert f"distance over {len(tested)} runs" in chart
    # the broken feed: the latest validation's failed rules
    failures = _step(demo_summary, "broken feed", "validate").payload["failures"]
    for failure in failures:
        assert cells(data, "data-failure", f"{failure['rule']}:{failure['column']}")[2] == str(
            failure["n_rows"]
        )

    # the switches of production, newest first: the rollback drill (back to the version the canary
    # replaced, then forward again) after the canary; the canary's version serves now
    environments = _get(f"{demo_ui}/environments")
    production = environments.split('id="env-production"')[1]
    served = re.findall(r'<li data-served="(\w+)">.*?\((\S+) by [^)]*\)</li>', production)
    retrained, replaced = str(canary["version"]), str(canary["previous"])
    assert served[:3] == [(retrained, "rollback"), (replaced, "rollback"), (retrained, "deploy")]
    assert served[-1] == ("1", "deploy")
    drill = [_step(demo_summary, "week 3", name).payload for name in ("rollback drill", "roll forward")]
    rows = re.findall(
        r"<tr><td>([^<]+)</td><td>rollback</td><td>(\w+)</td>.*?<td>([^<]*)</td></tr>", production
    )
    assert [(version, reason) for _, version, reason in rows] == [
        (retrained, drill[1]["reason"]),
        (replaced, drill[0]["reason"]),
    ]  # the last deployments, newest first: both rollbacks with the CLI's reason
    assert "not running (nothing deployed, or the server was stopped)" in problems(environments)


def test_every_page_of_the_demo_in_chromium(demo_summary, demo_ui, tmp_path: Path) -> None:
    playwright = sync_playwright()
    with playwright as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            for name in PAGES:
                answer = page.goto(f"{demo_ui}/{name}")
                assert answer is not None
                assert answer.status == 200
                assert severe_violations(page) == [], name
                page.screenshot(path=str(tmp_path / f"ui-{name}.png"), full_page=True)
                assert (tmp_path / f"ui-{name}.png").stat().st_size > 10_000
        finally:
            browser.close()
    keep = os.environ.get("CONVEYOR_UI_SCREENSHOTS")
    if keep:
        for name in SHOTS:
            shutil.copy(tmp_path / f"ui-{name}.png", Path(keep) / f"ui-{name}.png")
