"""The environments page reads the ledger once per request, and shows what the ledger says.

A known ledger (production: 1, then 2, then a rollback to 1; nothing in staging), no server
running: the page is drawn from the real state folder, and every read of the ledger's log by the
state store is counted (the store's own reader, wrapped; it still reads the file).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support_ui import get, problems

from conveyor.deploy import Ledger, LedgerEntry, free_port, status
from conveyor.deploy._ledger import LEDGER_LOG
from conveyor.deploy._status import environment_status
from conveyor.project import Project
from conveyor.state import LocalStore
from conveyor.ui import create_ui_app
from conveyor.ui._panels import _ledger_rows, environments

KNOWN = [
    LedgerEntry("production", "deploy", "ok", "1", "blue-green", "first", "ana", "2026-11-01T10:00:00"),
    LedgerEntry("production", "aliases", "ok", "1", None, "aliases set", "ana", "2026-11-01T10:00:01"),
    LedgerEntry("production", "deploy", "failed", "3", "canary", "smoke failed", "bo", "2026-11-02T09:00:00"),
    LedgerEntry("production", "deploy", "ok", "2", "blue-green", "better", "bo", "2026-11-03T12:00:00",
                {"previous": "1"}),
    LedgerEntry("production", "rollback", "ok", "1", None, "errors up", "cy", "2026-11-04T08:30:00",
                {"previous": "2"}),
]  # fmt: skip


@pytest.fixture
def known_project(make_project) -> Project:
    staging, production = free_port(), free_port()
    while production == staging:
        production = free_port()
    root: Path = make_project(
        "project: {name: shop}\n"
        "deploy:\n  environments:\n"
        f"    staging: {{port: {staging}}}\n    production: {{port: {production}}}\n"
    )
    project = Project.load(root)
    ledger = Ledger.of(project)
    for entry in KNOWN:
        ledger.append(entry)
    return project


@pytest.fixture
def ledger_reads(monkeypatch) -> list[str]:
    """The ledger reads of the state store, one item per read of its log."""
    reads: list[str] = []
    read = LocalStore.read

    def counting(self: LocalStore, log: str, *, after: int = 0):  # type: ignore[no-untyped-def]
        if log == LEDGER_LOG:
            reads.append(log)
        return read(self, log, after=after)

    monkeypatch.setattr(LocalStore, "read", counting)
    return reads


def test_the_environments_page_reads_the_ledger_once(known_project: Project, ledger_reads: list[str]) -> None:
    client = TestClient(create_ui_app(known_project), raise_server_exceptions=True)
    page = get(client, "/environments")
    assert len(ledger_reads) == 1
    get(client, "/environments")
    assert len(ledger_reads) == 2  # once per request: nothing is cached between requests

    production = page.split('id="env-production"')[1]
    assert "<strong data-expected>1</strong> (previous 2) since 2026-11-04T08:30:00" in production
    items = re.findall(r"<li data-served=[^>]*>(.*?)</li>", production)
    timeline = [re.sub(r"<[^>]+>", "", li) for li in items]
    assert timeline == [  # newest first; the failed deploy of 3 never served
        "1 from 2026-11-04T08:30:00 to now (rollback by cy)",
        "2 from 2026-11-03T12:00:00 to 2026-11-04T08:30:00 (deploy by bo)",
        "1 from 2026-11-01T10:00:00 to 2026-11-03T12:00:00 (deploy by ana)",
    ]
    for entry in KNOWN:
        if entry.action != "aliases":
            assert f"<td>{entry.time}</td><td>{entry.action}</td>" in production
    assert "<td>2026-11-01T10:00:01</td>" not in production  # the alias bookkeeping is not a deployment
    assert "nothing deployed yet (the ledger has no entry for staging)" in problems(page)
    assert "nothing deployed yet (the ledger has no entry for production)" not in problems(page)


def test_one_read_gives_what_each_reader_read_on_its_own(known_project: Project, ledger_reads) -> None:
    page = environments(known_project)
    assert len(ledger_reads) == 1
    entries = Ledger.of(known_project).entries()
    for name in ("staging", "production"):
        alone = environment_status(known_project, name)  # reads the ledger itself
        assert page[name]["status"].data == alone
        assert page[name]["ledger"].data == _ledger_rows(Ledger.of(known_project).entries(name), name)
        assert status(known_project, entries)["environments"][name] == alone
    production = page["production"]["status"].data
    assert production["expected"] == {"primary": "1", "previous": "2", "since": "2026-11-04T08:30:00"}
    assert [e["version"] for e in production["last_deployments"]] == ["1", "3", "2", "1"]
    assert production["aliases"] == {"outcome": "ok", "reason": "aliases set"}
    assert page["staging"]["status"].data["expected"] is None
    ledger_reads.clear()
    status(known_project)  # `conveyor status`: every environment from one read too
    assert len(ledger_reads) == 1


def test_a_ledger_that_cannot_be_read_is_one_line_in_each_part(known_project: Project) -> None:
    log = known_project.state_dir / (LEDGER_LOG + ".jsonl")
    log.unlink()
    log.mkdir()  # reading it is an OS error: the status and each history say so in one line
    page = environments(known_project)
    for name in ("staging", "production"):
        assert page[name]["ledger"].problem.startswith("ledger: ")
        assert page[name]["status"].problem.startswith("status: ")
        assert "\n" not in page[name]["ledger"].problem


def test_the_rollouts_page_reads_the_ledger_once(known_project: Project, ledger_reads: list[str]) -> None:
    ledger = Ledger.of(known_project)
    details = {"experiment": "ab-1", "test": {"p_value": 0.4}}
    when = "2026-11-05T10:00:00"
    concluded = LedgerEntry(
        "production",
        "ab-conclude",
        "kept-control",
        "1",
        reason="no difference",
        who="dee",
        time=when,
        details=details,
    )
    ledger.append(concluded)
    ledger_reads.clear()
    client = TestClient(create_ui_app(known_project), raise_server_exceptions=True)
    page = get(client, "/rollouts")
    assert ledger_reads.count(LEDGER_LOG) == 1  # the canaries of each environment and the A/B history
    concluded = page.split('id="ab"')[1]
    assert "ab-1" in concluded
    assert "no difference" in concluded
    assert "no canary rollout in production yet" in page


def test_an_unreadable_ledger_is_one_line_in_each_part_of_the_rollouts_page(known_project: Project) -> None:
    log = known_project.state_dir / (LEDGER_LOG + ".jsonl")
    log.unlink()
    log.mkdir()
    page = get(TestClient(create_ui_app(known_project), raise_server_exceptions=True), "/rollouts")
    found = problems(page)
    assert sum(line.startswith("ledger: ") for line in found) == 3, found  # two environments, the history
