"""Generated workflows: structure, safety rules, and both linters on both templates."""

from __future__ import annotations

import re

import pytest
import yaml

from conveyor.config import Template, defaults_for, dump_settings
from conveyor.pipeline import PIPELINE, generate_workflows, run_scripts
from conveyor.pipeline._workflows import CI_CD, MONITORING, REUSABLE, WEEKLY, render_workflow

SETUP_RUNS = {"python -m pip install -r requirements.lock", "dvc pull"}


def _docs(template: Template):
    return generate_workflows(defaults_for(template))


@pytest.fixture(params=[Template.RECOMMENDER, Template.CLASSIFIER], ids=lambda t: t.value)
def generated(request, make_project, cli):
    settings = defaults_for(request.param)
    root = make_project(dump_settings(settings), name=request.param.value)
    result = cli("--project", root, "workflows", "generate", "--json")
    assert result.exit_code == 0, result.stderr
    return root, request.param


def test_generated_workflows_pass_actionlint_and_the_schema(generated, cli):
    root, _ = generated
    result = cli("--project", root, "workflows", "check", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = result.json()
    assert report["ok"] is True
    assert sorted(report["files"]) == sorted(
        f".github/workflows/{n}" for n in (CI_CD, WEEKLY, MONITORING, REUSABLE)
    )


def test_a_hand_broken_workflow_fails_with_actionlints_message(generated, cli):
    root, _ = generated
    bad = root / ".github" / "workflows" / "broken.yml"
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@v3\n"
    )
    result = cli("--project", root, "workflows", "check", "--json")
    assert result.exit_code == 1
    findings = result.json()["findings"]
    messages = [f["message"] for f in findings if f["tool"] == "actionlint"]
    assert any("broken.yml:7:15" in m and '"actions/checkout@v3"' in m for m in messages), messages
    assert 'the runtime or service used by "actions/checkout@v3" action is retired' in result.stderr


def test_our_injection_check_flags_an_input_inside_run(make_project, cli):
    root = make_project("")
    path = root / ".github" / "workflows" / "inject.yml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "on:\n  workflow_dispatch:\n    inputs:\n      who:\n        type: string\n"
        "permissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ inputs.who }}\n"
    )
    result = cli("--project", root, "workflows", "check", "--json")
    assert result.exit_code == 1
    ours = [f for f in result.json()["findings"] if f["tool"] == "conveyor"]
    assert ours
    assert "${{ inputs.who }}" in ours[0]["message"]
    assert "script injection" in ours[0]["message"]


def _edit_weekly(root, change) -> None:
    path = root / ".github" / "workflows" / WEEKLY
    doc = yaml.safe_load(path.read_text())
    change(doc["on"]["workflow_dispatch"])
    path.write_text(render_workflow(doc))


def test_check_catches_a_dispatch_input_the_retrain_workflow_does_not_declare(generated, cli):
    """The monitor sends `reason`; a weekly-retrain.yml without it would get a 422 from GitHub."""
    root, _ = generated
    _edit_weekly(root, lambda dispatch: dispatch["inputs"].pop("reason"))
    result = cli("--project", root, "workflows", "check", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    [finding] = result.json()["findings"]
    assert finding["tool"] == "conveyor"
    assert "sends the dispatch input 'reason'" in finding["message"]
    assert "weekly-retrain.yml" in finding["message"]


def test_check_catches_a_required_dispatch_input_the_monitor_does_not_send(generated, cli):
    root, _ = generated
    _edit_weekly(
        root, lambda dispatch: dispatch["inputs"].update(region={"type": "string", "required": True})
    )
    result = cli("--project", root, "workflows", "check", "--json")
    assert result.exit_code == 1
    [finding] = result.json()["findings"]
    assert "'region' is required with no default" in finding["message"]


def test_check_without_workflows_is_exit_2(make_project, cli):
    result = cli("--project", make_project(""), "workflows", "check")
    assert result.exit_code == 2
    assert "conveyor workflows generate" in result.stderr


@pytest.mark.parametrize("template", list(Template), ids=lambda t: t.value)
def test_no_untrusted_expression_inside_any_run_script(template):
    for name, doc in _docs(template).items():
        for script in run_scripts(doc):
            assert "github.event" not in script, (name, script)
            assert "${{" not in script, (name, script)  # every value reaches the shell through env:


@pytest.mark.parametrize("template", list(Template), ids=lambda t: t.value)
def test_every_working_step_calls_conveyor(template):
    for name, doc in _docs(template).items():
        for script in run_scripts(doc):
            assert script in SETUP_RUNS or script.startswith("conveyor "), (name, script)


def test_ci_cd_chains_jobs_and_deploys_only_on_main_to_staging_then_production():
    doc = _docs(Template.RECOMMENDER)[CI_CD]
    jobs = doc["jobs"]
    assert jobs["model-training"]["needs"] == ["data-validation"]
    assert jobs["model-deployment"]["needs"] == ["model-training"]
    assert jobs["production-deployment"]["needs"] == ["model-deployment"]
    assert jobs["model-deployment"]["environment"] == "staging"
    assert jobs["production-deployment"]["environment"] == "production"
    for job in ("model-deployment", "production-deployment"):
        assert jobs[job]["if"] == "github.ref == 'refs/heads/main' && github.event_name != 'pull_request'"
        assert jobs[job]["concurrency"]["cancel-in-progress"] is False
        assert jobs[job]["env"]["CONVEYOR_ADMIN_TOKEN"] == "${{ secrets.CONVEYOR_ADMIN_TOKEN }}"
    assert set(doc["on"]) == {"push", "pull_request", "schedule", "workflow_dispatch"}
    assert doc["on"]["push"]["branches"] == ["main"]
    assert "data/**" in doc["on"]["push"]["paths"]
    assert doc["on"]["pull_request"]["paths"] == doc["on"]["push"]["paths"]
    assert doc["permissions"] == {"contents": "read"}
    assert jobs["model-training"]["uses"] == "./.github/workflows/reusable-training.yml"


def test_deployments_share_one_concurrency_group_per_environment_across_workflows():
    docs = _docs(Template.RECOMMENDER)
    groups = {}
    for name in (CI_CD, WEEKLY):
        for job in docs[name]["jobs"].values():
            if "environment" in job:
                groups.setdefault(job["environment"], set()).add(job["concurrency"]["group"])
    assert groups.keys() == {"staging", "production"}
    assert all(len(g) == 1 for g in groups.values())


def test_pip_cache_is_keyed_on_the_lock_and_actions_are_current():
    text = "\n".join(yaml.safe_dump(d) for d in _docs(Template.CLASSIFIER).values())
    assert "hashFiles('requirements.lock')" in text
    uses = set(re.findall(r"uses: (actions/[\w-]+@v\d+)", text))
    assert uses == {
        "actions/checkout@v5",
        "actions/setup-python@v6",
        "actions/cache@v5",
        "actions/upload-artifact@v6",
    }


def test_every_pipeline_stage_runs_in_the_workflows_with_its_own_command():
    docs = _docs(Template.CLASSIFIER)
    scripts = [s for name in (CI_CD, REUSABLE) for s in run_scripts(docs[name])]
    for stage in PIPELINE:
        assert any(s == stage.command_line or s.startswith(stage.command_line + " ") for s in scripts), stage


def test_matrix_spans_python_versions_and_model_types():
    settings = defaults_for(Template.CLASSIFIER).model_copy(
        update={
            "workflows": defaults_for(Template.CLASSIFIER).workflows.model_copy(
                update={"model_types": ["random-forest", "xgboost", "lightgbm"]}
            )
        }
    )
    matrix = generate_workflows(settings)[CI_CD]["jobs"]["model-matrix"]["strategy"]["matrix"]
    assert matrix == {
        "python-version": ["3.11", "3.12"],
        "model-type": ["random-forest", "xgboost", "lightgbm"],
    }


def test_weekly_monitoring_and_reusable_workflows():
    docs = _docs(Template.RECOMMENDER)
    weekly = docs[WEEKLY]
    assert weekly["on"]["schedule"] == [{"cron": "0 3 * * 1"}]
    assert "workflow_dispatch" in weekly["on"]
    assert weekly["jobs"]["production-deployment"]["steps"][-1]["run"] == "conveyor ab start"
    assert weekly["jobs"]["notify"]["if"] == "always()"
    monitoring = docs[MONITORING]
    assert monitoring["on"]["schedule"] == [{"cron": "0 */6 * * *"}]
    steps = monitoring["jobs"]["monitor"]["steps"]
    assert steps[-2]["run"] == "conveyor monitor"
    assert steps[-1]["if"] == "failure()"
    reusable = docs[REUSABLE]
    inputs = reusable["on"]["workflow_call"]["inputs"]
    assert inputs["model-type"]["required"] is True
    train = next(
        s for s in reusable["jobs"]["train"]["steps"] if s.get("run", "").startswith("conveyor train")
    )
    assert train["run"] == 'conveyor train --model-type "$MODEL_TYPE"'
    assert train["env"] == {"MODEL_TYPE": "${{ inputs.model-type }}"}
