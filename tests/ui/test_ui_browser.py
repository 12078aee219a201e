"""The operations page in a real browser: Debian's Chromium driven headless by Playwright.

Skipped, with the reason, when Playwright or /usr/bin/chromium is missing (`make test`
installs Chromium when it runs as root). Every page is checked with axe-core (vendored
in tests/ui/fixtures/axe-core): no serious or critical violation.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support_ui import UI_TOKEN, launch, severe_violations, sync_playwright

from conveyor.deploy import Ledger
from conveyor.project import Project

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.slow]
PAGES = ("/environments", "/rollouts", "/models", "/data")


def test_environments_page_in_chromium(cli, deploy_project: Path, ui_url: str, tmp_path: Path) -> None:
    playwright = sync_playwright()
    done = cli("--project", str(deploy_project), "deploy", "--env", "production", "--version", "2", "--json")
    assert done.exit_code == 0, done.stderr
    status = cli("--project", str(deploy_project), "status", "--json").json()["environments"]["production"]
    outside: list[str] = []
    with playwright as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: None if r.url.startswith(ui_url) else outside.append(r.url))
            answer = page.goto(f"{ui_url}/environments")
            assert answer is not None
            assert answer.status == 200
            production = page.locator("#env-production")
            assert production.locator("[data-readiness]").inner_text().strip() == "ready"
            row = production.locator('tr[data-version="2"] td')
            assert row.nth(1).inner_text() == status["server"]["versions"][0]["variant"] == "primary"
            assert float(row.nth(2).inner_text()) == 100.0
            # the split picture has a text equivalent; the timeline names the served version
            label = production.locator(".split").get_attribute("aria-label")
            assert label == "traffic split: version 2 100 %"
            assert production.locator("[data-served]").first.get_attribute("data-served") == "2"
            # keyboard: the first Tab reaches the skip link, the next ones the page links
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.textContent") == "Skip to content"
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.getAttribute('href')") == "/environments"
            page.keyboard.press("Tab")
            page.keyboard.press("Enter")
            page.wait_for_url(f"{ui_url}/rollouts")
            assert page.locator("h1").inner_text() == "Rollouts"
            for path in PAGES:
                page.goto(ui_url + path)
                assert severe_violations(page) == [], path
            page.goto(f"{ui_url}/environments")
            shot = tmp_path / "ui-environments.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    assert outside == [], f"requests outside the application: {outside}"
    keep = os.environ.get("CONVEYOR_UI_SCREENSHOTS")
    if keep:  # docs/ui-environments.png: live servers, so readiness and the split show
        shutil.copy(shot, Path(keep) / shot.name)


def test_click_rollback_without_then_with_the_token(cli, deploy_project: Path, ui_url: str) -> None:
    playwright = sync_playwright()
    for version in ("1", "2"):
        done = cli("--project", str(deploy_project), "deploy", "--env", "production", "--version", version)
        assert done.exit_code == 0, done.stderr
    form = {"env": "production", "why": "from the browser", "confirm": "yes"}
    with playwright as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{ui_url}/environments")
            assert page.locator("[data-action]").count() == 0  # read-only: no button
            refused = page.request.post(f"{ui_url}/actions/rollback", form=form)
            assert refused.status == 403
            assert refused.text().startswith("actions need the admin token")
            # the operator unlocks with the token, then clicks, confirms and gives a reason
            page.get_by_role("link", name="Unlock actions").click()
            page.get_by_label("admin token").fill(UI_TOKEN)
            page.get_by_role("button", name="Unlock").click()
            page.wait_for_url(f"{ui_url}/environments")
            assert UI_TOKEN not in page.content()
            page.locator('#env-production [data-action="rollback"]').click()
            assert severe_violations(page) == []  # the confirmation form too
            page.get_by_label("why").fill("from the browser")
            page.get_by_role("button", name="Confirm: roll back").click()
            assert page.locator("h1").inner_text() == "Done: roll back in production"
        finally:
            browser.close()
    entry = [
        e for e in Ledger.of(Project.load(deploy_project)).entries("production") if e.action == "rollback"
    ][-1]
    assert (entry.who, entry.version) == ("ui", "1")
    assert entry.reason.endswith("; why: from the browser")
