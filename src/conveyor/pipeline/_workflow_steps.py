"""The building blocks every generated workflow shares: pinned actions, runner set-up, the shared
stores' settings per job, and the pull request's one report comment.

Actions are pinned by commit SHA, the version beside it as a comment (zizmor's
``unpinned-uses``; a tag can be moved, a commit cannot). The SHAs were checked
against public workflows that pin the same release (see each entry).

A runner is disposable: nothing that must outlive a job lives on it. The
registry, the ledger and the reference profile come from the shared stores —
``registry.tracking_uri`` (an MLflow server), the state store whose URI is in
the secret named by ``state.uri_env``, S3 with the standard AWS variables —,
read from GitHub's variables and secrets; a job with an ``environment:`` gets
that environment's values (GitHub resolves ``secrets.X`` / ``vars.X`` to the
environment's first, then the repository's).
"""

from __future__ import annotations

import re
from typing import Any

from conveyor.config import Settings, WorkflowTraining
from conveyor.pipeline._data_remote import DVC_S3_REMOTE_NAME

REQUIREMENTS_FILE = "requirements.lock"


# action → (repository, commit SHA, release); verified against workflows that pin the same release
ACTIONS: dict[str, tuple[str, str, str]] = {
    "checkout": ("actions/checkout", "08c6903cd8c0fde910a37f88322edcfb5dd907a8", "v5.0.0"),
    "setup-python": ("actions/setup-python", "e797f83bcb11b83ae66e0230d6156d7c80228e7c", "v6.0.0"),
    "upload-artifact": ("actions/upload-artifact", "b7c566a772e6b6bfb58ed0dc250532a479d7789f", "v6.0.0"),
}
_RELEASE_OF_SHA = {sha: release for _, sha, release in ACTIONS.values()}
_PINNED_LINE = re.compile(r"^(\s*(?:- )?uses: [\w.-]+/[\w.-]+@([0-9a-f]{40}))$", re.MULTILINE)


def _pinned(action: str) -> str:
    repository, sha, _ = ACTIONS[action]
    return f"{repository}@{sha}"


CHECKOUT = _pinned("checkout")
SETUP_PYTHON = _pinned("setup-python")
UPLOAD_ARTIFACT = _pinned("upload-artifact")

# read by boto3 / MLflow / the state store; secrets hold credentials, variables hold settings
S3_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
MLFLOW_SECRETS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
S3_VARIABLES = ("AWS_ENDPOINT_URL_S3", "MLFLOW_S3_ENDPOINT_URL", "AWS_DEFAULT_REGION")

REPORT_MARKER = "<!-- conveyor-report -->"


def annotate_pins(text: str) -> str:
    """``uses: owner/repo@<sha>`` lines get their release as a comment (PyYAML writes no comments)."""
    return _PINNED_LINE.sub(
        lambda m: (
            f"{m.group(1)} # {_RELEASE_OF_SHA[m.group(2)]}" if m.group(2) in _RELEASE_OF_SHA else m.group(1)
        ),
        text,
    )


def team_mode(settings: Settings) -> bool:
    """Whether the project uses shared stores (the only way jobs on disposable runners share state)."""
    tracking = settings.registry.tracking_uri or ""
    shared_registry = "://" in tracking and not tracking.startswith(("sqlite:", "file:"))
    # state.uri_env has a default (CONVEYOR_STATE_URI, read only when set); naming it in the file says
    # the team uses a state store
    state = "uri_env" in settings.state.model_fields_set and bool(settings.state.uri_env)
    return shared_registry or state or bool(settings.serving.request_log.uri) or bool(settings.data.remote)


def admin_token_variable(settings: Settings, environment: str) -> str | None:
    env = settings.deploy.environments.get(environment)
    own = env.admin_token_env if env is not None else None
    return own or settings.serving.admin_token_env


def secret_names(settings: Settings, environment: str | None = None) -> list[str]:
    """The secrets a job reads: the shared stores' (in team mode) and an environment's admin token."""
    names: list[str] = []
    if environment:
        token = admin_token_variable(settings, environment)
        if token:
            names.append(token)
    if settings.state.uri_env:
        names.append(settings.state.uri_env)
    if team_mode(settings):
        names += [*S3_SECRETS, *MLFLOW_SECRETS]
    return list(dict.fromkeys(names))


def stores_env(settings: Settings, environment: str | None = None) -> dict[str, str]:
    """``env:`` of a job: each secret it reads, by name (never ``secrets: inherit``)."""
    return {name: f"${{{{ secrets.{name} }}}}" for name in secret_names(settings, environment)}


def replicas_env(settings: Settings, environment: str | None = None) -> dict[str, str]:
    """``env:`` entries for the replicas' URLs (``replicas_env``) from GitHub variables: the
    deployment ``environment``'s own, or, for a job of no environment (the monitor), every
    environment's variable as the repository defines it."""
    names = [
        env.replicas_env
        for name, env in settings.deploy.environments.items()
        if env.replicas_env and (environment is None or name == environment)
    ]
    return {name: f"${{{{ vars.{name} }}}}" for name in dict.fromkeys(names)}


def setup_steps(settings: Settings, python: str, *, data: bool = True) -> list[dict[str, Any]]:
    """Runner set-up: code (no persisted token), Python with pip's cache keyed on the lock, the pinned
    install, the S3 settings that are set, the DVC-tracked data (``data``: a job whose work runs
    elsewhere, on Databricks, needs neither). No state is cached: it is shared."""
    lock = REQUIREMENTS_FILE
    steps: list[dict[str, Any]] = [
        {"name": "Check out the repository", "uses": CHECKOUT, "with": {"persist-credentials": False}},
        {
            "name": f"Set up Python (pip cache keyed on {lock})",
            "uses": SETUP_PYTHON,
            "with": {"python-version": python, "cache": "pip", "cache-dependency-path": lock},
        },
        {"name": f"Install the pinned requirements ({lock})", "run": f"python -m pip install -r {lock}"},
    ]
    if not data:
        return steps
    if team_mode(settings):
        steps.append(s3_settings_step())
    steps.append(
        {"name": "Pull the DVC-tracked data", "run": DVC_PULL_S3 if settings.data.remote else "dvc pull"}
    )
    return steps


# data.remote in S3: the committed .dvc/config names the bucket; this runner's endpoint (the
# GitHub variable, exported by the S3 settings step) goes to .dvc/config.local, never committed
DVC_PULL_S3 = (
    'if [ -n "${AWS_ENDPOINT_URL_S3:-}" ]; then\n'
    f'  dvc remote modify --local {DVC_S3_REMOTE_NAME} endpointurl "$AWS_ENDPOINT_URL_S3"\n'
    "fi\n"
    "dvc pull\n"
)


S3_SETTINGS_SCRIPT = (
    f"for name in {' '.join(S3_VARIABLES)}; do\n"
    '  value="${!name}"\n'
    '  if [ -n "$value" ]; then printf \'%s=%s\\n\' "$name" "$value" >> "$GITHUB_ENV"; fi\n'
    "done\n"
)


def s3_settings_step() -> dict[str, Any]:
    """The S3 endpoint and region from GitHub variables — only those set (an empty endpoint breaks boto)."""
    return {
        "name": "S3 endpoint and region from the GitHub variables that are set",
        "env": {name: f"${{{{ vars.{name} }}}}" for name in S3_VARIABLES},
        "run": S3_SETTINGS_SCRIPT,
    }


PR_COMMENT_SCRIPT = f"""\
if ! gh run download "$RUN_ID" --repo "$REPO" --name "$REPORT" --dir report; then
  echo "no report artifact in this run (training did not reach its report): no comment"
  exit 0
fi
{{ printf '%s\\n\\n' '{REPORT_MARKER}'; cat report/conveyor-report.md; }} > comment.md
id="$(gh api --paginate "repos/$REPO/issues/$PR/comments" \\
  --jq '.[] | select(.user.login == "github-actions[bot]")
        | select(.body | startswith("{REPORT_MARKER}")) | .id' \\
  | head -n 1)"
if [ -n "$id" ]; then
  gh api --method PATCH "repos/$REPO/issues/comments/$id" -F body=@comment.md > /dev/null
else
  gh api --method POST "repos/$REPO/issues/$PR/comments" -F body=@comment.md > /dev/null
fi
"""


def pr_comment_job(settings: Settings, needs: str, report: str) -> dict[str, Any]:
    """One report comment per pull request, updated in place (found by its marker, then PATCHed).

    The only job that may write to pull requests; it checks out nothing and runs no project code.
    A fork's pull request gets a read-only token, so the job skips those.
    """
    return {
        "name": "report comment on the pull request",
        "needs": needs,
        "if": "always() && github.event_name == 'pull_request' "
        "&& github.event.pull_request.head.repo.full_name == github.repository",
        "runs-on": settings.workflows.runs_on,
        "timeout-minutes": 10,
        "permissions": {"pull-requests": "write", "actions": "read"},
        "steps": [
            {
                "name": "Create or update the report comment",
                "env": {
                    "GH_TOKEN": "${{ github.token }}",
                    "REPO": "${{ github.repository }}",
                    "PR": "${{ github.event.pull_request.number }}",
                    "RUN_ID": "${{ github.run_id }}",
                    "REPORT": report,
                },
                "run": PR_COMMENT_SCRIPT,
            }
        ],
    }


def workflow_warnings(settings: Settings) -> list[str]:
    """What keeps the generated workflows from working on disposable runners, one line each."""
    warnings: list[str] = []
    if not team_mode(settings):
        warnings.append(
            "no shared store is configured (registry.tracking_uri, state.uri_env, serving.request_log.uri): "
            "each job's runner starts empty, so a model registered in one job is not there for the next; "
            "see docs/workflows.md"
        )
    for name, env in settings.deploy.environments.items():
        if not env.remote:
            warnings.append(
                f"deploy.environments.{name} has no replicas: its deploy job would start a server on the "
                "runner, which disappears with the job; list the long-running replicas' URLs"
            )
    if not settings.serving.request_log.uri:
        warnings.append(
            "serving.request_log.uri is unset: monitoring.yml's runner cannot read the live request log"
        )
    if settings.workflows.training is WorkflowTraining.DATABRICKS:
        # the stages run on the cluster, which gets the shared stores' secrets from Databricks only
        given = settings.spark.databricks.secrets
        for name in secret_names(settings):
            if name not in given:
                warnings.append(
                    f"workflows.training: databricks: the job cluster gets no {name}; add it to "
                    f"spark.databricks.secrets ({name}: scope/key of a Databricks secret)"
                )
    return warnings
