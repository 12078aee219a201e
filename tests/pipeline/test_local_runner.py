"""The local runner with an injected pipeline: order, stop at failure, skip up to date."""

from __future__ import annotations

import json
import sys

import pytest

from conveyor.errors import UsageError
from conveyor.pipeline import PIPELINE, Runner, Stage, StageInput, select_stages, validate_pipeline
from conveyor.project import Project

PY = [sys.executable]


def _append(name: str) -> tuple[str, ...]:
    code = f"open('order.txt', 'a').write('{name}\\n')"
    return ("-c", code)


def _fail(message: str, code: int = 1) -> tuple[str, ...]:
    """A stage that fails as a ``conveyor`` command does: its typed error in the outcome file; its
    stderr ends with a misleading line the runner must not take for the reason."""
    return (
        "-c",
        "import sys\n"
        "from conveyor.outcome import CommandError, CommandOutcome, take_outcome_path, write_outcome\n"
        f"error = CommandError('CheckFailed', '{message}')\n"
        f"write_outcome(CommandOutcome({code}, error), take_outcome_path())\n"
        "sys.stderr.write('noise\\nconveyor: UsageError: not the reason\\n')\n"
        f"sys.exit({code})",
    )


def _pipeline(fail_at: str | None = None) -> tuple[Stage, ...]:
    names = ("a", "b", "c")
    stages = []
    for i, name in enumerate(names):
        command = _fail(f"{name} said no") if name == fail_at else _append(name)
        needs = (names[i - 1],) if i else ()
        stages.append(Stage(name, command, needs, "job", name, (StageInput.CONFIG,)))
    return tuple(stages)


@pytest.fixture
def project(make_project):
    return Project.load(make_project("project:\n  name: runner-test\n"))


def _order(project: Project) -> list[str]:
    path = project.root / "order.txt"
    return path.read_text().split() if path.exists() else []


def test_stages_run_in_pipeline_order(project):
    report = Runner(project, _pipeline(), program=PY).run()
    assert report.ok
    assert [o.status for o in report.outcomes] == ["ok", "ok", "ok"]
    assert _order(project) == ["a", "b", "c"]
    assert all(o.seconds > 0 for o in report.outcomes)
    assert json.loads(json.dumps(report.to_dict()))["failed_stage"] is None


def test_run_stops_at_the_first_failure_with_its_reason(project):
    report = Runner(project, _pipeline(fail_at="b"), program=PY).run()
    assert not report.ok
    assert [(o.stage, o.status) for o in report.outcomes] == [("a", "ok"), ("b", "failed"), ("c", "not-run")]
    failed = report.failed
    assert failed is not None
    assert failed.exit_code == 1
    assert failed.reason == "CheckFailed: b said no"
    assert _order(project) == ["a"]
    assert "not the reason" in (project.state_dir / "runs" / "b.log").read_text()


def test_a_stage_that_dies_without_an_outcome_is_named_by_its_signal(project):
    stages = list(_pipeline())
    stages[1] = Stage(
        "b",
        ("-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"),
        ("a",),
        "job",
        "b",
        (StageInput.CONFIG,),
    )
    report = Runner(project, tuple(stages), program=PY).run()
    failed = report.failed
    assert failed is not None
    assert failed.stage == "b"
    assert failed.reason.startswith("killed by signal 9 (output in ")


def test_a_real_conveyor_stage_reports_its_typed_error_through_the_outcome_file(project):
    # `conveyor validate` with no data: the command's own typed error, not a line of its stderr
    stages = (Stage("validate", ("validate",), (), "job", "validate", (StageInput.CONFIG,)),)
    report = Runner(project, stages).run()
    failed = report.failed
    assert failed is not None
    assert failed.exit_code == 2
    missing = project.root / "data" / "raw" / "interactions.parquet"
    assert failed.reason == f"InputError: {missing}: no such file"


def test_rerun_skips_up_to_date_stages_until_an_input_changes(project):
    Runner(project, _pipeline(), program=PY).run()
    again = Runner(project, _pipeline(), program=PY).run()
    assert [o.status for o in again.outcomes] == ["skipped", "skipped", "skipped"]
    assert _order(project) == ["a", "b", "c"]

    project.config_file.write_text("project:\n  name: runner-test\n# changed\n")
    changed = Runner(project, _pipeline(), program=PY).run()
    assert [o.status for o in changed.outcomes] == ["ok", "ok", "ok"]

    forced = Runner(project, _pipeline(), program=PY, force=True).run()
    assert [o.status for o in forced.outcomes] == ["ok", "ok", "ok"]


def test_a_changed_upstream_stage_reruns_its_dependents(project):
    stages = list(_pipeline())
    Runner(project, tuple(stages), program=PY).run()
    # b's command changes: b and c (which needs b) are out of date, a is not
    stages[1] = Stage("b", ("-c", "pass"), ("a",), "job", "b", (StageInput.CONFIG,))
    report = Runner(project, tuple(stages), program=PY).run()
    assert [o.status for o in report.outcomes] == ["skipped", "ok", "ok"]


def test_failed_stage_is_not_stamped(project):
    Runner(project, _pipeline(fail_at="c"), program=PY).run()
    report = Runner(project, _pipeline(fail_at="c"), program=PY).run()
    assert [o.status for o in report.outcomes] == ["skipped", "skipped", "failed"]


def test_from_and_until_select_a_slice(project):
    report = Runner(project, _pipeline(), program=PY).run("b", "b")
    assert [o.stage for o in report.outcomes] == ["b"]
    assert _order(project) == ["b"]


@pytest.mark.parametrize(
    ("start", "until", "message"),
    [
        ("nope", None, "--from nope: no such stage"),
        (None, "nope", "--until nope: no such stage"),
        ("c", "a", "--from c comes after --until a"),
    ],
)
def test_bad_stage_selection_is_a_usage_error(start, until, message):
    with pytest.raises(UsageError, match=message):
        select_stages(_pipeline(), start, until)


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ((Stage("a", ("x",)), Stage("a", ("y",))), "defined twice"),
        ((Stage("a", ("x",), ("b",)), Stage("b", ("y",))), "does not come before it"),
        (
            (Stage("a", ("x",), job="j"), Stage("b", ("y",), job="k"), Stage("c", ("z",), job="j")),
            "contiguous",
        ),
        ((Stage("a", ("x",), job="j"), Stage("b", ("y",), job="j", environment="staging")), "mixes"),
        ((Stage("a", ()),), "needs a name and a command"),
    ],
)
def test_malformed_pipelines_are_refused(stages, message):
    with pytest.raises(UsageError, match=message):
        validate_pipeline(stages)


def test_the_pipeline_is_valid_and_ordered():
    validate_pipeline(PIPELINE)
    names = [s.name for s in PIPELINE]
    assert names[:3] == ["validate", "drift", "train"]
    assert names[-1] == "deploy-production"


def test_cli_run_reports_a_bad_stage_name(cli, make_project):
    root = make_project("")
    result = cli("--project", root, "run", "--from", "nope", "--json")
    assert result.exit_code == 2
    assert "no such stage" in result.json()["error"]["message"]
