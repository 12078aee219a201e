"""Report templates: HTML escapes every value, Markdown does not; a missing name is an error."""

from __future__ import annotations

import jinja2
import pytest

from conveyor.project import Project
from conveyor.rendering import render_template
from conveyor.reports import record_stage_result, render_html, render_markdown

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def project(make_project):
    proj = Project.load(make_project("project:\n  name: shop\n"))
    record_stage_result(
        proj,
        "drift",
        {
            "dataset_drift": False,
            "drift_share": 0.0,
            "columns": {HOSTILE: {"type": "numeric", "test": "ks", "statistic": 0.01, "threshold": 0.1}},
        },
    )
    return proj


def test_html_escapes_what_the_results_hold(project):
    html = render_html(project)
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_markdown_keeps_text_as_written(project):
    assert f"| {HOSTILE} | numeric | ks | 0.01 | 0.1 | – | ok |" in render_markdown(project)


def test_a_name_the_template_needs_and_was_not_given_is_an_error():
    with pytest.raises(jinja2.UndefinedError):
        render_template("conveyor.reports", "report.md", name="shop")
