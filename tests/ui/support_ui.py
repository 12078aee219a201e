"""What the UI tests share: fetching a page, its one-line problems, a table row's cells."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient


def get(client: TestClient, page: str) -> str:
    answer = client.get(page)
    assert answer.status_code == 200, answer.text
    assert "Traceback" not in answer.text
    return answer.text


def problems(page: str) -> list[str]:
    return [html.unescape(p) for p in re.findall(r"<p [^>]*data-problem>([^<]*)</p>", page)]


def cells(page: str, attr: str, key: str) -> list[str]:
    """The cells of the (first) table row marked ``attr="key"``, as text."""
    row = re.search(rf'<tr {attr}="{re.escape(key)}"[^>]*>(.*?)</tr>', page, re.S)
    assert row, f"no row {attr}={key}"
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split())
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)
    ]


# -- Debian's Chromium driven by Playwright ---------------------------------------------------
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
AXE = Path(__file__).parent / "fixtures" / "axe-core" / "axe.min.js"  # axe-core 4.14.1 (MPL-2.0), npm
SEVERE = ("serious", "critical")
UI_TOKEN = "browser-admin-token"  # the admin token of the `conveyor ui` process ui_url starts


def sync_playwright() -> Any:
    """Playwright's sync API, or a skip that says what is missing (`make test` installs both)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (Debian package chromium; make test installs it as root)")
    return sync_api.sync_playwright()


def launch(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)


def severe_violations(page: Any) -> list[str]:
    """axe-core's serious and critical accessibility violations of the page as loaded."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {v['nodes'][0]['target']}"
        for v in result["violations"]
        if v.get("impact") in SEVERE
    ]


def start_ui(project: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """`conveyor ui --port 0` on ``project`` in its own process; the process and its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "--project", str(project), "ui", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    lines: list[str] = []
    found = None
    while found is None and len(lines) < 50:  # bounded: the address line comes first
        lines.append(process.stderr.readline())
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", lines[-1])
        if not lines[-1]:
            break  # the process ended
    if found is None:
        process.terminate()
        process.wait(timeout=30)
    assert found, "".join(lines)
    return process, found[1]
