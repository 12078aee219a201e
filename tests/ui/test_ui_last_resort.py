"""A page that cannot be drawn at all is one line and the navigation, never a bare 500."""

from __future__ import annotations

from fastapi.testclient import TestClient
from support_ui import problems

from conveyor.project import Project
from conveyor.ui import _panels, create_ui_app


def test_a_page_that_fails_to_draw_says_so_in_one_line(make_project, monkeypatch) -> None:
    root = make_project("project: {name: shop}\n")

    def broken(project: Project) -> dict:
        raise KeyError("arms")

    monkeypatch.setattr(_panels, "environments", broken)
    client = TestClient(create_ui_app(Project.load(root)))  # nothing is raised past the page
    answer = client.get("/environments")
    assert answer.status_code == 200
    assert problems(answer.text) == ["this page could not be drawn: KeyError: 'arms'"]
    assert 'href="/data"' in answer.text  # the other pages are a click away
    assert client.get("/rollouts").status_code == 200
