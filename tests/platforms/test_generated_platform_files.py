"""`conveyor generate`: Dockerfile, Kubernetes manifests (validated offline), systemd unit, Argo template."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate.utils")
dockerfile = pytest.importorskip("dockerfile")

K8S_VERSION = "1.33.0"
TOKEN_VALUE = "s3cr3t-admin-token-value-never-written"
CONFIG = """
project: {name: Shop Recs}
registry: {tracking_uri: "http://mlflow.internal:5000"}
serving: {request_log: {uri: "s3://shop-logs/requests"}}
state: {uri_env: CONVEYOR_STATE_URI}
deploy:
  environments:
    staging: {port: 9101}
    production:
      admin_token_env: SHOP_PROD_ADMIN_TOKEN
      replicas: ["http://10.0.0.1:9100", "http://10.0.0.2:9100", "http://10.0.0.3:9100"]
"""


@pytest.fixture
def project(make_project, monkeypatch):
    monkeypatch.setenv("SHOP_PROD_ADMIN_TOKEN", TOKEN_VALUE)  # present in the environment, never written
    return make_project(CONFIG, name="shop")


def _generate(cli, root: Path, *args: str) -> tuple[dict, Path]:
    out = root / "out"
    result = cli("--project", root, "generate", *args, "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    return result.json(), out


def _objects(path: Path) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(path.read_text()) if doc}


def _no_secret_values(out: Path) -> None:
    for path in out.rglob("*"):
        if path.is_file():
            assert TOKEN_VALUE not in path.read_text(), path


def test_kubernetes_manifests_validate_and_follow_the_config(cli, project):
    report, out = _generate(
        cli, project, "kubernetes", "--env", "production", "--image", "reg.example/shop:7"
    )
    assert report["files"] == ["shop-recs-production.yaml"]
    objects = _objects(out / "shop-recs-production.yaml")
    assert sorted(objects) == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
    for obj in objects.values():  # the published schemas of Kubernetes, strict: no unknown field
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True)

    deployment = objects["Deployment"]
    assert deployment["spec"]["replicas"] == 3  # the environment's three replicas
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "reg.example/shop:7"
    assert container["command"] + container["args"] == [
        "conveyor", "serve", "--env", "production", "--host", "0.0.0.0", "--port", "9100",
    ]  # fmt: skip
    assert container["ports"] == [{"name": "http", "containerPort": 9100, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["resources"]["requests"]["memory"]
    env = {e["name"]: e for e in container["env"]}
    token = env["SHOP_PROD_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "shop-recs-production-secrets", "key": "admin-token"}
    state = env["CONVEYOR_STATE_URI"]["valueFrom"]["secretKeyRef"]
    assert state == {"name": "shop-recs-production-secrets", "key": "state-uri"}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
    plain = {e["name"] for e in container["env"] if "value" in e}
    assert plain == {"MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "DVC_NO_ANALYTICS", "HOME"}

    service = objects["Service"]["spec"]
    assert service["ports"][0]["port"] == 9100
    assert service["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert objects["PodDisruptionBudget"]["spec"]["selector"] == deployment["spec"]["selector"]
    hpa = objects["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 6)
    assert "shop-recs-production-secrets" in report["commands"][0]
    assert report["warnings"] == []  # registry, state and request log are all shared
    _no_secret_values(out)


def test_the_schema_check_catches_a_broken_manifest(cli, project):
    """The validation the test above relies on can fail: a wrong type and an unknown field."""
    _, out = _generate(cli, project, "kubernetes")
    deployment = _objects(out / "shop-recs-production.yaml")["Deployment"]
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "three"}}
    with pytest.raises(Exception, match="three"):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    unknown = {**deployment, "spec": {**deployment["spec"], "replica": 3}}
    with pytest.raises(Exception, match="replica"):
        kubernetes_validate.validate(unknown, K8S_VERSION, strict=True)


def test_replica_options_and_a_pinned_model_version(cli, project):
    _, out = _generate(
        cli, project, "kubernetes", "--env", "staging", "--replicas", "1", "--max-replicas", "4",
        "--model-version", "12",
    )  # fmt: skip
    objects = _objects(out / "shop-recs-staging.yaml")
    assert objects["Deployment"]["spec"]["replicas"] == 1
    assert objects["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 4
    args = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--model-version", "12"]
    assert "9101" in args
    env = {e["name"] for e in objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "CONVEYOR_ADMIN_TOKEN" in env  # staging has no admin_token_env of its own: serving's


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        ("", ["kubernetes"], "registry.tracking_uri is unset"),
        ("registry: {tracking_uri: 'sqlite:///x.db'}", ["argo"], "registry.tracking_uri is sqlite:///x.db"),
        (CONFIG, ["kubernetes", "--env", "qa"], "--env qa: unknown environment (known: production, staging)"),
        (
            CONFIG,
            ["kubernetes", "--replicas", "3", "--max-replicas", "2"],
            "--max-replicas 2: below --replicas 3",
        ),
        (CONFIG, ["systemd", "--workdir", "relative/dir"], "must be an absolute path"),
    ],
)
def test_refusals_are_one_line_exit_2(cli, make_project, config, args, message):
    root = make_project(config)
    result = cli("--project", root, "generate", *args, "--out", root / "out")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (root / "out").exists()


def test_dockerfile_installs_the_workflows_pin_as_a_non_root_user(cli, project):
    (project / "requirements.lock").write_text("conveyor-ml==0.1.0\npolars==1.0.0\n")
    _report, out = _generate(cli, project, "docker")
    text = (out / "Dockerfile").read_text()
    lines = text.splitlines()
    assert (
        lines[3].startswith(f"FROM python:{sys.version_info.major}.") or lines[3] == "FROM python:3.11-slim"
    )
    assert "COPY requirements.lock ./" in lines
    assert "RUN python -m pip install -r requirements.lock" in lines
    assert "USER 10001:10001" in lines
    assert lines.index("USER 10001:10001") > lines.index("RUN python -m pip install -r requirements.lock")
    healthcheck = next(line for line in lines if line.startswith("HEALTHCHECK"))
    assert "http://127.0.0.1:9100/health" in healthcheck
    assert (
        lines[-1] == 'CMD ["conveyor", "serve", "--env", "production", "--host", "0.0.0.0", "--port", "9100"]'
    )
    assert "EXPOSE 9100" in lines
    # nothing secret enters the build context: an allow-list of two files
    ignore = (out / ".dockerignore").read_text().splitlines()
    assert [x for x in ignore if not x.startswith("#")] == ["*", "!conveyor.yaml", "!requirements.lock"]
    assert "SHOP_PROD_ADMIN_TOKEN" not in text
    assert "ARG " not in text
    _no_secret_values(out)


def test_dockerfile_without_a_lock_installs_the_configured_pin(cli, make_project):
    pin = "conveyor-ml @ git+https://github.com/example/conveyor@0123456789abcdef0123456789abcdef01234567"
    root = make_project(
        f"registry: {{tracking_uri: 'http://mlflow:5000'}}\nworkflows: {{conveyor_requirement: '{pin}'}}\n"
    )
    _, out = _generate(cli, root, "docker")
    text = (out / "Dockerfile").read_text()
    assert f'RUN python -m pip install "{pin}"' in text
    assert "libgomp1 git" in text  # pip needs git for a git+ pin


def test_systemd_unit_verifies_and_reads_its_secrets_from_the_env_file(cli, project, tmp_path):
    workdir = tmp_path / "srv" / "shop"
    (workdir / ".venv" / "bin").mkdir(parents=True)
    conveyor = Path(sys.executable).parent / "conveyor"
    (workdir / ".venv" / "bin" / "conveyor").symlink_to(conveyor)
    _report, out = _generate(
        cli, project, "systemd", "--workdir", str(workdir), "--user", "shop", "--host", "0.0.0.0"
    )
    unit = out / "conveyor-shop-recs-production.service"
    text = unit.read_text()
    assert f"ExecStart={workdir}/.venv/bin/conveyor serve --env production --host 0.0.0.0 --port 9100" in text
    for line in ("Restart=on-failure", "User=shop", "EnvironmentFile=/etc/conveyor/shop-recs-production.env",
                 f"ReadWritePaths={workdir}/.conveyor", "NoNewPrivileges=yes"):  # fmt: skip
        assert line in text.splitlines()
    example = (out / "shop-recs-production.env.example").read_text().splitlines()
    assert "SHOP_PROD_ADMIN_TOKEN=" in example
    assert "CONVEYOR_STATE_URI=" in example
    _no_secret_values(out)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit's syntax was not verified")
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [x for x in proc.stderr.splitlines() if "conveyor-shop-recs-production" in x]
    assert proc.returncode == 0, proc.stderr
    assert not problems, proc.stderr
    # and the check can fail: a unit whose program does not exist
    (workdir / ".venv" / "bin" / "conveyor").unlink()
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "not executable" in proc.stderr


def test_argo_analysis_template_calls_the_judge(cli, project):
    _report, out = _generate(cli, project, "argo", "--image", "reg.example/shop:7")
    template = _objects(out / "shop-recs-production-analysis-template.yaml")["AnalysisTemplate"]
    assert template["apiVersion"] == "argoproj.io/v1alpha1"
    assert [a["name"] for a in template["spec"]["args"]] == [
        "candidate-version",
        "baseline-version",
        "window",
    ]
    (metric,) = template["spec"]["metrics"]
    web = metric["provider"]["web"]
    assert web["url"].startswith(
        "http://shop-recs-judge:8790/v1/canary?env=production&candidate={{args.candidate-version}}"
    )
    assert web["jsonPath"] == "{$.verdict}"
    assert (metric["successCondition"], metric["failureCondition"]) == (
        'result == "pass"',
        'result == "fail"',
    )
    judge = _objects(out / "shop-recs-judge.yaml")
    for obj in judge.values():
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    container = judge["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["judge", "--host", "0.0.0.0", "--port", "8790"]
    assert judge["Service"]["spec"]["ports"][0]["port"] == 8790
    assert "SHOP_PROD_ADMIN_TOKEN" not in {e["name"] for e in container["env"]}  # the judge only reads
