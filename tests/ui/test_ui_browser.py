"""The operations page in a real browser: Debian's Chromium driven headless by Playwright.

Skipped, with the reason, when Playwright or /usr/bin/chromium is missing (`make test`
installs Chromium when it runs as root). Set CONVEYOR_UI_SCREENSHOTS=DIR to keep the
screenshot (docs/ui-environments.png was taken that way).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_environments_page_in_chromium(cli, deploy_project: Path, ui_url: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (Debian package chromium; make test installs it as root)")
    done = cli("--project", str(deploy_project), "deploy", "--env", "production", "--version", "2", "--json")
    assert done.exit_code == 0, done.stderr
    status = cli("--project", str(deploy_project), "status", "--json").json()["environments"]["production"]
    outside: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
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
            page.wait_for_url(f"{ui_url}/models")
            assert page.locator("h1").inner_text() == "Models"
            page.goto(f"{ui_url}/environments")
            shot = tmp_path / "ui-environments.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    assert outside == [], f"requests outside the application: {outside}"
    keep = os.environ.get("CONVEYOR_UI_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)
