"""The operations page against real project state: real MLflow, real servers, the CLI's --json."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from support_ui import cells, get, problems

from conveyor.deploy import Ledger
from conveyor.project import Project
from conveyor.registry import get_version_by_alias, list_versions
from conveyor.ui import create_ui_app

pytestmark = [pytest.mark.xdist_group("deploy"), pytest.mark.slow]


def _client(root: Path) -> TestClient:
    return TestClient(create_ui_app(Project.load(root)), raise_server_exceptions=True)


def _production_alias(project: Project) -> str | None:
    found = get_version_by_alias(project, "production")
    return None if found is None else found.version


def _aliases_synced_after_rollback(project: Project) -> bool:
    """The background alias sync wrote its ``aliases ok`` line after production's last rollback."""
    actions = [(e.action, e.outcome) for e in Ledger.of(project).entries("production")]
    rollback = max(i for i, step in enumerate(actions) if step == ("rollback", "ok"))
    return ("aliases", "ok") in actions[rollback + 1 :]


def test_a_project_with_nothing_deployed_says_so_and_lists_the_registry(deploy_project: Path) -> None:
    client = _client(deploy_project)
    page = get(client, "/environments")
    found = problems(page)
    for env in ("staging", "production"):
        assert f"nothing deployed yet (the ledger has no entry for {env})" in found
    assert found.count("not running (nothing deployed, or the server was stopped)") == 2
    assert page.count("unreachable: ConnectError") == 2

    models = get(client, "/models")
    registered = list_versions(Project.load(deploy_project))
    assert {v.version for v in registered} == {"1", "2", "3", "4"}
    candidate = get_version_by_alias(Project.load(deploy_project), "candidate")
    assert candidate is not None
    for version in registered:
        row = cells(models, "data-version", version.version)
        assert row[1] == ("candidate" if version.version == candidate.version else "-")
        assert row[2] == "als"
        assert row[5] == version.run_id
    assert "no evaluation recorded yet (conveyor evaluate)" in problems(models)

    rollouts = get(client, "/rollouts")
    assert problems(rollouts) == [
        "no canary rollout in staging yet (conveyor deploy --strategy canary)",
        "no canary rollout in production yet (conveyor deploy --strategy canary)",
        "A/B test: no A/B test runs in 'production': start one with `conveyor ab start`",
    ]
    assert client.get("/ab", follow_redirects=False).headers["location"] == "/rollouts#ab"
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
    page = get(client, "/environments")
    production = page.split('id="env-production"')[1]
    for served in status["server"]["versions"]:
        row = cells(production, "data-version", served["version"])
        assert row[1] == served["variant"]
        assert float(row[2]) == pytest.approx(served["share"] * 100)
    assert sorted(v["share"] for v in status["server"]["versions"] if v["share"]) == [0.5, 0.5]
    assert re.search(r"<span class=\"badge ok\">ready</span>", production)
    assert f"<strong data-expected>{status['expected']['primary']}</strong>" in production
    # the timeline: 1, then 2, then 1 again (the rollback), newest first
    assert re.findall(r'data-served="(\w+)"', production) == ["1", "2", "1"]
    for entry in status["last_deployments"]:
        assert f"<td>{entry['time']}</td><td>{entry['action']}</td>" in production
    assert "deploy-test" in production  # who
    assert "nothing deployed yet (the ledger has no entry for staging)" in problems(page)

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
    ab_page = get(client, "/rollouts").split('id="ab"')[1]
    assert problems(ab_page) == []
    for name, arm in ab["arms"].items():
        row = cells(ab_page, "data-arm", name)
        assert [int(c) for c in row[1:4]] == [arm["users"], arm["impressions"], arm["clicks"]]
        assert float(row[4]) == pytest.approx(arm["ctr"], rel=1e-3)
    assert f"{ab['always_valid_p']:.3g}" in ab_page
    # the interim estimates: each arm's CTR interval, the lift with its interval, the stopping rule
    for name, (low, high) in ab["ctr_ci"].items():
        assert cells(ab_page, "data-arm", name)[5] == f"[{low:.4g}, {high:.4g}]"
    lift = ab["lift"]
    assert re.search(r"<strong data-lift>([^<]*) %</strong>", ab_page)[1] == f"{lift['lift'] * 100:.4g}"
    assert f"<span data-fixed-p>{lift['p_value']:.3g}</span>" in ab_page
    assert ab["stopping_rule"].startswith("fixed horizon: `conveyor ab conclude` decides once")
    assert html.escape(ab["stopping_rule"], quote=False) in ab_page

    # the rollback sets the registry aliases from the ledger in the background (production, then
    # previous): once its `aliases` ledger line is written, the models page shows the registry's aliases
    project = Project.load(deploy_project)
    deadline = time.monotonic() + 60
    while not _aliases_synced_after_rollback(project) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _aliases_synced_after_rollback(project)
    assert _production_alias(project) == "1"
    expected: dict[str, list[str]] = {}
    for alias in ("candidate", "previous", "production", "staging"):
        found = get_version_by_alias(project, alias)
        if found is not None:
            expected.setdefault(found.version, []).append(alias)
    assert expected["1"] == ["production"]
    models = get(client, "/models")
    for version in ("1", "2", "3", "4"):
        assert cells(models, "data-version", version)[1] == (", ".join(expected.get(version, [])) or "-")


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
    page = get(client, "/environments")
    found = problems(page)
    assert any(p.startswith("status: ") for p in found), found
    assert "1" in re.findall(r'data-served="(\w+)"', page)  # the ledger part still shows
    assert re.search(r'<span class="badge ok">ready</span>', page)  # staging still answers /ready

    models = get(client, "/models")
    lines = problems(models)
    assert len(lines) == 2
    assert lines[0].startswith("model registry: ")
    assert lines[1].startswith("stage results: ")
    assert all("\n" not in line for line in lines)

    ab = [p for p in problems(get(client, "/rollouts")) if p.startswith("A/B test: ")]
    assert len(ab) == 1


def test_conveyor_ui_serves_the_pages_on_a_free_port(ui_url: str) -> None:
    for page in ("/environments", "/rollouts", "/models", "/data", "/static/style.css"):
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
