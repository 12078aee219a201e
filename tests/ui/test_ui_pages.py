"""The operations page against real project state: real MLflow, real servers, the CLI's --json."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from conveyor.project import Project
from conveyor.registry import get_version_by_alias, list_versions
from conveyor.ui import create_ui_app

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.slow]


def _client(root: Path) -> TestClient:
    return TestClient(create_ui_app(Project.load(root)), raise_server_exceptions=True)


def _get(client: TestClient, page: str) -> str:
    answer = client.get(page)
    assert answer.status_code == 200, answer.text
    assert "Traceback" not in answer.text
    return answer.text


def _problems(page: str) -> list[str]:
    return [html.unescape(p) for p in re.findall(r"<p [^>]*data-problem>([^<]*)</p>", page)]


def _cells(page: str, attr: str, key: str) -> list[str]:
    """The cells of the table row marked ``attr="key"``, as text."""
    row = re.search(rf'<tr {attr}="{re.escape(key)}">(.*?)</tr>', page, re.S)
    assert row, f"no row {attr}={key}"
    return [
        html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)
    ]


def _production_alias(project: Project) -> str | None:
    found = get_version_by_alias(project, "production")
    return None if found is None else found.version


def test_a_project_with_nothing_deployed_says_so_and_lists_the_registry(deploy_project: Path) -> None:
    client = _client(deploy_project)
    page = _get(client, "/environments")
    problems = _problems(page)
    for env in ("staging", "production"):
        assert f"nothing deployed yet (the ledger has no entry for {env})" in problems
    assert problems.count("not running (nothing deployed, or the server was stopped)") == 2
    assert page.count("unreachable: ConnectError") == 2

    models = _get(client, "/models")
    registered = list_versions(Project.load(deploy_project))
    assert {v.version for v in registered} == {"1", "2", "3", "4"}
    candidate = get_version_by_alias(Project.load(deploy_project), "candidate")
    assert candidate is not None
    for version in registered:
        cells = _cells(models, "data-version", version.version)
        assert cells[1] == ("candidate" if version.version == candidate.version else "-")
        assert cells[2] == "als"
        assert cells[5] == version.run_id
    assert "no evaluation recorded yet (conveyor evaluate)" in _problems(models)

    ab = _get(client, "/ab")
    assert len(_problems(ab)) == 1
    assert _problems(ab)[0].startswith("A/B test: ")
    assert client.get("/").headers.get("location") in (None, "/environments")
    assert client.get("/nowhere").status_code == 404


def test_pages_show_the_numbers_of_the_cli_json(cli, deploy_project: Path) -> None:
    root = str(deploy_project)
    for version in ("1", "2"):
        done = cli("--project", root, "deploy", "--env", "production", "--version", version, "--json")
        assert done.exit_code == 0, done.stderr
    back = cli("--project", root, "rollback", "--env", "production", "--json")
    assert back.exit_code == 0, back.stderr
    started = cli("--project", root, "ab", "start", "--version", "2", "--variant-ratio", "0.5", "--json")
    assert started.exit_code == 0, started.stderr

    status = cli("--project", root, "status", "--json").json()["environments"]["production"]
    client = _client(deploy_project)
    page = _get(client, "/environments")
    production = page.split('id="env-production"')[1]
    for served in status["server"]["versions"]:
        cells = _cells(production, "data-version", served["version"])
        assert cells[1] == served["variant"]
        assert float(cells[2]) == pytest.approx(served["share"] * 100)
    assert sorted(v["share"] for v in status["server"]["versions"] if v["share"]) == [0.5, 0.5]
    assert re.search(r"<span class=\"badge ok\">ready</span>", production)
    assert f"<strong data-expected>{status['expected']['primary']}</strong>" in production
    # the timeline: 1, then 2, then 1 again (the rollback), newest first
    assert re.findall(r'data-served="(\w+)"', production) == ["1", "2", "1"]
    for entry in status["last_deployments"]:
        assert f"<td>{entry['time']}</td><td>{entry['action']}</td>" in production
    assert "deploy-test" in production  # who
    assert "nothing deployed yet (the ledger has no entry for staging)" in _problems(page)

    # real traffic through the A/B split; the page's arms equal `conveyor ab status --json`
    with httpx.Client(base_url=status["url"], timeout=10) as http:
        for user in range(60):
            answer = http.post("/recommend", json={"user_id": user, "k": 5})
            assert answer.status_code == 200
            if user % 3 == 0:
                http.post("/feedback", json={"request_id": answer.json()["request_id"], "item_id": 1,
                                             "event": "click"})  # fmt: skip
    deadline = time.monotonic() + 60
    ab = cli("--project", root, "ab", "status", "--json").json()
    while sum(a["users"] for a in ab["arms"].values()) < 60 and time.monotonic() < deadline:
        time.sleep(0.5)
        ab = cli("--project", root, "ab", "status", "--json").json()
    assert sum(a["users"] for a in ab["arms"].values()) == 60
    ab_page = _get(client, "/ab")
    assert _problems(ab_page) == []
    for name, arm in ab["arms"].items():
        cells = _cells(ab_page, "data-arm", name)
        assert [int(c) for c in cells[1:4]] == [arm["users"], arm["impressions"], arm["clicks"]]
        assert float(cells[4]) == pytest.approx(arm["ctr"], rel=1e-3)
    assert f"{ab['always_valid_p']:.3g}" in ab_page

    # the rollback sets the registry aliases from the ledger in the background: once they
    # settle, the models page shows the registry's aliases
    project = Project.load(deploy_project)
    deadline = time.monotonic() + 60
    while _production_alias(project) != "1" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _production_alias(project) == "1"
    expected: dict[str, list[str]] = {}
    for alias in ("candidate", "previous", "production", "staging"):
        found = get_version_by_alias(project, alias)
        if found is not None:
            expected.setdefault(found.version, []).append(alias)
    assert expected["1"] == ["production"]
    models = _get(client, "/models")
    for version in ("1", "2", "3", "4"):
        assert _cells(models, "data-version", version)[1] == (", ".join(expected.get(version, [])) or "-")


def test_broken_state_gives_one_line_per_broken_part_and_the_rest_still_shows(
    cli, deploy_project: Path
) -> None:
    project = Project.load(deploy_project)
    root = str(deploy_project)
    done = cli("--project", root, "deploy", "--env", "staging", "--version", "1", "--json")
    assert done.exit_code == 0, done.stderr
    # a corrupt A/B plan breaks the status reader; an unreachable server breaks readiness
    ab_file = project.state_dir / "envs" / "production" / "ab.json"
    ab_file.parent.mkdir(parents=True, exist_ok=True)
    ab_file.write_text("{not json")
    assert cli("--project", root, "ab", "status", "--json").exit_code != 0
    # a corrupt MLflow store; a corrupt stage result
    db = project.state_dir / "mlflow.db"
    db.write_bytes(b"this is not a database" * 100)
    results = project.state_dir / "results"
    results.mkdir(exist_ok=True)
    (results / "evaluate.json").write_text("[1, 2")

    client = _client(deploy_project)
    page = _get(client, "/environments")
    problems = _problems(page)
    assert any(p.startswith("status: ") for p in problems), problems
    assert "1" in re.findall(r'data-served="(\w+)"', page)  # the ledger part still shows
    assert re.search(r'<span class="badge ok">ready</span>', page)  # staging still answers /ready

    models = _get(client, "/models")
    lines = _problems(models)
    assert len(lines) == 2
    assert lines[0].startswith("model registry: ")
    assert lines[1].startswith("stage results: ")
    assert all("\n" not in line for line in lines)

    ab = _problems(_get(client, "/ab"))
    assert len(ab) == 1
    assert ab[0].startswith("A/B test: ")


def test_conveyor_ui_serves_the_pages_on_a_free_port(ui_url: str) -> None:
    for page in ("/environments", "/models", "/ab", "/static/style.css"):
        assert httpx.get(ui_url + page, timeout=30).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [(["ui", "--port", "70000"], "--port"), (["ui", "--port", "x"], "--port")],
)
def test_bad_options_are_one_line_and_exit_2(
    cli, deploy_project: Path, args: list[str], message: str
) -> None:
    result = cli("--project", str(deploy_project), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
