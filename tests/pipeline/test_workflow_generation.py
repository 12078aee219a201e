"""Generated workflows: structure, safety rules, and both linters on both templates."""

from __future__ import annotations

import re

import pytest
import yaml

from conveyor.config import Template, defaults_for, dump_settings
from conveyor.pipeline import PIPELINE, generate_workflows, run_scripts
from conveyor.pipeline._workflow_steps import DVC_PULL_S3, PR_COMMENT_SCRIPT, S3_SETTINGS_SCRIPT
from conveyor.pipeline._workflows import CI_CD, MONITORING, REUSABLE, WEEKLY, render_workflow

SETUP_RUNS = {"python -m pip install -r requirements.lock", "dvc pull", DVC_PULL_S3, S3_SETTINGS_SCRIPT,
              PR_COMMENT_SCRIPT}  # fmt: skip


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


def test_actions_are_pinned_by_sha_with_the_release_beside_and_pip_is_cached_on_the_lock():
    text = "\n".join(render_workflow(d) for d in _docs(Template.CLASSIFIER).values())
    uses = set(re.findall(r"uses: (actions/[\w-]+@\S+.*)", text))
    assert uses == {
        "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0",
        "actions/setup-python@e797f83bcb11b83ae66e0230d6156d7c80228e7c # v6.0.0",
        "actions/upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f # v6.0.0",
    }
    for doc in _docs(Template.CLASSIFIER).values():
        for job in doc["jobs"].values():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("actions/setup-python@"):
                    assert step["with"]["cache"] == "pip"
                    assert step["with"]["cache-dependency-path"] == "requirements.lock"
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"] == {"persist-credentials": False}


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


TEAM = """
project: {name: shop}
registry: {tracking_uri: "http://mlflow.internal:5000"}
serving: {request_log: {uri: "s3://shop-logs/requests"}}
state: {uri_env: CONVEYOR_STATE_URI}
alerts: {channels: [{name: ops, kind: slack, url_env: SLACK_URL}]}
deploy:
  environments:
    staging: {replicas: ["http://10.0.0.9:9101"], admin_token_env: STAGING_ADMIN_TOKEN}
    production:
      replicas: ["http://10.0.0.1:9100", "http://10.0.0.2:9100"]
      admin_token_env: PROD_ADMIN_TOKEN
"""


def _team_docs():
    from conveyor.config import parse_settings

    return generate_workflows(parse_settings(yaml.safe_load(TEAM)))


def _jobs(docs):
    return [(name, job_id, job) for name, doc in docs.items() for job_id, job in doc["jobs"].items()]


@pytest.mark.parametrize("docs", [_docs(Template.RECOMMENDER), _team_docs()], ids=["laptop", "team"])
def test_no_cache_holds_state_and_no_secret_is_inherited(docs):
    for name, doc in docs.items():
        text = render_workflow(doc)
        assert "actions/cache" not in text, name
        assert ".conveyor" not in text, name  # nothing of the state folder is carried between runners
        assert "inherit" not in text, name


@pytest.mark.parametrize("docs", [_docs(Template.CLASSIFIER), _team_docs()], ids=["laptop", "team"])
def test_only_the_comment_job_writes_to_pull_requests(docs):
    writers = []
    for name, job_id, job in _jobs(docs):
        permissions = job.get("permissions")
        assert permissions is not None, (name, job_id)  # every job states its own
        if permissions.get("pull-requests") == "write":
            writers.append((name, job_id))
        elif name == MONITORING:
            assert permissions in ({"contents": "read"}, {"contents": "read", "actions": "write"})
        else:
            assert permissions == {"contents": "read"}, (name, job_id)
    assert writers == [(CI_CD, "pr-report")]
    comment = docs[CI_CD]["jobs"]["pr-report"]
    assert comment["permissions"] == {"pull-requests": "write", "actions": "read"}
    assert comment["needs"] == "model-training"
    assert "github.event_name == 'pull_request'" in comment["if"]
    assert all("uses" not in step for step in comment["steps"])  # runs no code from the pull request
    assert "--method PATCH" in comment["steps"][0]["run"]
    assert "<!-- conveyor-report -->" in PR_COMMENT_SCRIPT


def test_team_jobs_read_the_shared_stores_from_github_secrets_and_variables():
    docs = _team_docs()
    ci = docs[CI_CD]["jobs"]
    production = ci["production-deployment"]
    assert production["environment"] == "production"
    assert production["env"]["PROD_ADMIN_TOKEN"] == "${{ secrets.PROD_ADMIN_TOKEN }}"
    assert "STAGING_ADMIN_TOKEN" not in production["env"]
    assert ci["model-deployment"]["env"]["STAGING_ADMIN_TOKEN"] == "${{ secrets.STAGING_ADMIN_TOKEN }}"
    for job in (production, ci["data-validation"]):
        assert job["env"]["CONVEYOR_STATE_URI"] == "${{ secrets.CONVEYOR_STATE_URI }}"
        assert job["env"]["AWS_SECRET_ACCESS_KEY"] == "${{ secrets.AWS_SECRET_ACCESS_KEY }}"
        s3 = next(step for step in job["steps"] if step.get("run") == S3_SETTINGS_SCRIPT)
        assert s3["env"]["AWS_ENDPOINT_URL_S3"] == "${{ vars.AWS_ENDPOINT_URL_S3 }}"
    # the deploy job drives the replicas over HTTP: it starts no server on the runner
    assert [s["run"] for s in production["steps"] if s.get("run", "").startswith("conveyor ")] == [
        "conveyor deploy --env production"
    ]
    # the training call passes each secret by name, and the called workflow declares them
    call = ci["model-training"]
    assert call["secrets"]["CONVEYOR_STATE_URI"] == "${{ secrets.CONVEYOR_STATE_URI }}"
    declared = docs[REUSABLE]["on"]["workflow_call"]["secrets"]
    assert set(declared) == set(call["secrets"])
    assert docs[REUSABLE]["jobs"]["train"]["env"]["CONVEYOR_STATE_URI"] == "${{ secrets.CONVEYOR_STATE_URI }}"
    monitor = docs[MONITORING]["jobs"]["monitor"]
    assert monitor["env"]["AWS_ACCESS_KEY_ID"] == "${{ secrets.AWS_ACCESS_KEY_ID }}"
    assert "s3://shop-logs/requests" in monitor["steps"][-2]["name"]


def test_deploy_jobs_take_the_replicas_from_the_environments_variable_and_dvc_its_endpoint():
    from conveyor.config import parse_settings

    raw = yaml.safe_load(TEAM)
    raw["deploy"]["environments"]["production"] = {
        "replicas_env": "PROD_REPLICAS",
        "admin_token_env": "PROD_TOKEN",
    }
    raw["data"] = {"remote": "s3://shop-dvc/data"}
    docs = generate_workflows(parse_settings(raw))
    ci = docs[CI_CD]["jobs"]
    production = ci["production-deployment"]
    assert production["env"]["PROD_REPLICAS"] == "${{ vars.PROD_REPLICAS }}"
    assert production["env"]["PROD_TOKEN"] == "${{ secrets.PROD_TOKEN }}"
    assert "PROD_REPLICAS" not in ci["model-deployment"]["env"]  # staging's job: its own replicas only
    assert "PROD_REPLICAS" not in ci["data-validation"]["env"]
    assert (
        docs[WEEKLY]["jobs"]["production-deployment"]["env"]["PROD_REPLICAS"] == "${{ vars.PROD_REPLICAS }}"
    )
    # the monitor's readiness check probes production: the repository's value of the variable
    assert docs[MONITORING]["jobs"]["monitor"]["env"]["PROD_REPLICAS"] == "${{ vars.PROD_REPLICAS }}"
    # dvc pull reaches the S3 remote at the job's endpoint (a GitHub variable), with the S3 secrets
    for job in (production, ci["data-validation"], docs[REUSABLE]["jobs"]["train"]):
        steps = [step.get("name") for step in job["steps"]]
        pull = job["steps"][steps.index("Pull the DVC-tracked data")]
        assert pull["run"] == DVC_PULL_S3
        assert steps.index("S3 endpoint and region from the GitHub variables that are set") < steps.index(
            "Pull the DVC-tracked data"
        )
        assert job["env"]["AWS_ACCESS_KEY_ID"] == "${{ secrets.AWS_ACCESS_KEY_ID }}"
    assert 'dvc remote modify --local storage endpointurl "$AWS_ENDPOINT_URL_S3"' in DVC_PULL_S3


def test_a_dvc_remote_in_s3_alone_makes_the_jobs_read_the_s3_secrets():
    from conveyor.config import parse_settings

    settings = parse_settings({"data": {"remote": "s3://shop-dvc/data"}})
    job = generate_workflows(settings)[CI_CD]["jobs"]["data-validation"]
    assert job["env"]["AWS_SECRET_ACCESS_KEY"] == "${{ secrets.AWS_SECRET_ACCESS_KEY }}"
    assert [s["run"] for s in job["steps"] if s.get("name") == "Pull the DVC-tracked data"] == [DVC_PULL_S3]


def test_generate_warns_when_runners_would_start_empty(make_project, cli):
    result = cli("--project", make_project(""), "workflows", "generate", "--json")
    assert result.exit_code == 0
    warnings = result.json()["warnings"]
    assert any("no shared store is configured" in w for w in warnings)
    assert any("deploy.environments.production has no replicas" in w for w in warnings)
    team = cli("--project", make_project(TEAM, name="team"), "workflows", "generate", "--json")
    assert team.json()["warnings"] == []


def test_zizmor_passes_a_fresh_team_project_and_catches_a_planted_unpinned_action(make_project, cli):
    root = make_project(TEAM)
    assert cli("--project", root, "workflows", "generate").exit_code == 0
    result = cli("--project", root, "workflows", "check", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "zizmor" in result.json()["tools"]
    path = root / ".github" / "workflows" / MONITORING
    text = path.read_text()
    planted = re.sub(r"actions/setup-python@\S+ # v6.0.0", "actions/setup-python@v6", text)
    planted = planted.replace("        persist-credentials: false\n", "        fetch-depth: 1\n")
    assert planted != text
    path.write_text(planted)
    result = cli("--project", root, "workflows", "check", "--json")
    assert result.exit_code == 1
    found = {
        f["message"].split(": ")[1].split(" ")[0] for f in result.json()["findings"] if f["tool"] == "zizmor"
    }
    assert found == {"unpinned-uses", "artipacked"}, result.json()["findings"]


def test_check_catches_a_cache_that_carries_the_state_folder(make_project, cli):
    root = make_project(TEAM)
    assert cli("--project", root, "workflows", "generate").exit_code == 0
    path = root / ".github" / "workflows" / MONITORING
    doc = yaml.safe_load(path.read_text())
    steps = doc["jobs"]["monitor"]["steps"]
    steps.insert(
        2, {"name": "state", "uses": "actions/cache@v5", "with": {"path": ".conveyor", "key": "state"}}
    )
    path.write_text(render_workflow(doc))
    result = cli("--project", root, "workflows", "check", "--json")
    assert result.exit_code == 1
    ours = [f["message"] for f in result.json()["findings"] if f["tool"] == "conveyor"]
    assert ours == [
        ".github/workflows/monitoring.yml: actions/cache carries the state folder .conveyor/ "
        "between runners; a cache is evicted, immutable per key and raced by concurrent runs: "
        "use the shared stores (registry.tracking_uri, state.uri_env, serving.request_log.uri)"
    ]
