"""What the UI tests share: fetching a page, its one-line problems, a table row's cells."""

from __future__ import annotations

import html
import re

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
