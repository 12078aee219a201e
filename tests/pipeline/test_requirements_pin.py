"""The generated requirements.lock: an installable Conveyor pin, its closure, and the pip check."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from conveyor.config import Template, defaults_for, dump_settings
from conveyor.pipeline._requirements import conveyor_pin, requirements_lock

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _fake_install(site: Path, direct_url: dict | None) -> None:
    """A real dist-info folder of conveyor-ml, found first by importlib.metadata."""
    info = site / "conveyor_ml-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: conveyor-ml\nVersion: 0.1.0\n")
    # the real install's entry points: this folder shadows it, and the built-in model types,
    # drift tests, strategies and alert channels are registered there
    (info / "entry_points.txt").write_text(
        importlib.metadata.distribution("conveyor-ml").read_text("entry_points.txt") or ""
    )
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))


@pytest.mark.parametrize(
    ("direct_url", "expected", "warns"),
    [
        (None, "conveyor-ml==0.1.0", False),
        (
            {"url": "https://github.com/acme/conveyor", "vcs_info": {"vcs": "git", "commit_id": COMMIT}},
            f"conveyor-ml @ git+https://github.com/acme/conveyor@{COMMIT}",
            False,
        ),
        (
            {"url": "https://files.example/conveyor_ml-0.1.0-py3-none-any.whl", "archive_info": {}},
            "conveyor-ml @ https://files.example/conveyor_ml-0.1.0-py3-none-any.whl",
            False,
        ),
        (
            {"url": "file:///opt/w/conveyor_ml-0.1.0-py3-none-any.whl", "archive_info": {}},
            "conveyor-ml @ file:///opt/w/conveyor_ml-0.1.0-py3-none-any.whl",
            True,
        ),
    ],
    ids=["index", "vcs", "wheel-url", "wheel-file"],
)
def test_the_pin_follows_how_conveyor_is_installed(tmp_path, monkeypatch, direct_url, expected, warns):
    _fake_install(tmp_path, direct_url)
    monkeypatch.syspath_prepend(str(tmp_path))
    pin = conveyor_pin()
    assert pin.requirement == expected
    assert (pin.warning is not None) == warns


def test_a_local_folder_without_a_remote_pins_the_folder_loudly(tmp_path, monkeypatch, make_project, cli):
    folder = tmp_path / "checkout"
    folder.mkdir()
    _fake_install(tmp_path / "site", {"url": folder.as_uri(), "dir_info": {"editable": True}})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    pin = conveyor_pin()
    assert pin.requirement == f"conveyor-ml @ {folder.as_uri()}"
    assert pin.warning is not None
    assert "workflows.conveyor_requirement" in pin.warning
    root = make_project("")
    (root / "requirements.lock").write_text("conveyor-ml==0.1.0\n")
    result = cli("--project", root, "workflows", "generate", "--json")
    assert result.exit_code == 0
    assert (root / "requirements.lock").read_text() == f"{pin.requirement}\n"
    assert "warning: requirements.lock: Conveyor is installed from the folder" in result.stderr


def test_a_local_git_checkout_pins_its_origin_at_head(tmp_path, monkeypatch):
    folder = tmp_path / "checkout"
    folder.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", str(folder)], check=True)
    (folder / "f").write_text("x")
    subprocess.run([*git, "-C", str(folder), "add", "f"], check=True)
    subprocess.run([*git, "-C", str(folder), "commit", "-qm", "c"], check=True)
    subprocess.run(
        ["git", "-C", str(folder), "remote", "add", "origin", "https://github.com/acme/c.git"], check=True
    )
    head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    _fake_install(tmp_path / "site", {"url": folder.as_uri(), "dir_info": {}})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    pin = conveyor_pin()
    assert pin.requirement == f"conveyor-ml @ git+https://github.com/acme/c.git@{head.stdout.strip()}"
    assert pin.warning is None


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://github.com/acme/c.git", "git+https://github.com/acme/c.git"),
        ("git@github.com:acme/c.git", "git+ssh://git@github.com/acme/c.git"),
        ("LOCAL", "git+file://localhostLOCAL"),  # a clone of a clone: the remote is a path
    ],
)
def test_a_git_remote_that_is_not_a_url_becomes_one_pip_accepts(tmp_path, monkeypatch, origin, expected):
    upstream = tmp_path / "upstream"
    folder = tmp_path / "checkout"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", str(upstream)], check=True)
    (upstream / "f").write_text("x")
    subprocess.run([*git, "-C", str(upstream), "add", "f"], check=True)
    subprocess.run([*git, "-C", str(upstream), "commit", "-qm", "c"], check=True)
    subprocess.run(["git", "clone", "-q", str(upstream), str(folder)], check=True)
    origin = origin.replace("LOCAL", str(upstream))
    subprocess.run(["git", "-C", str(folder), "remote", "set-url", "origin", origin], check=True)
    head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    _fake_install(tmp_path / "site", {"url": folder.as_uri(), "dir_info": {}})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    wanted = expected.replace("LOCAL", upstream.resolve().as_posix())
    assert conveyor_pin().requirement == f"conveyor-ml @ {wanted}@{head.stdout.strip()}"


def test_the_lock_holds_the_configured_pin_and_the_full_closure():
    base = defaults_for(Template.CLASSIFIER)
    requirement = f"conveyor-ml @ git+https://github.com/acme/conveyor@{COMMIT}"
    settings = base.model_copy(
        update={"workflows": base.workflows.model_copy(update={"conveyor_requirement": requirement})}
    )
    text, pin = requirements_lock(settings)
    lines = [x for x in text.splitlines() if x and not x.startswith("#")]
    assert lines[0] == pin.requirement == settings.workflows.conveyor_requirement
    pins = dict(line.split("==") for line in lines[1:])
    # Conveyor's direct and indirect requirements, at the versions installed here
    for name in ("mlflow", "dvc", "typer", "pytest", "sqlalchemy", "pluggy"):
        assert pins[name] == metadata.version(name), name
    assert len(pins) > 50


def test_a_wrong_conveyor_requirement_is_a_config_error(make_project, cli):
    root = make_project("workflows:\n  conveyor_requirement: numpy==2.0\n")
    result = cli("--project", root, "workflows", "generate")
    assert result.exit_code == 2
    assert "workflows.conveyor_requirement" in result.stderr
    assert "must install conveyor-ml" in result.stderr


def _generated(make_project, cli, lock: str, text: str = "") -> Path:
    root = make_project(text or dump_settings(defaults_for(Template.CLASSIFIER)))
    (root / "requirements.lock").write_text(lock)
    result = cli("--project", root, "workflows", "generate", "--json")
    assert result.exit_code == 0, result.stderr
    return root


def test_generate_points_the_lock_at_the_configured_requirement(make_project, cli):
    requirement = f"conveyor-ml @ git+https://github.com/acme/conveyor@{COMMIT}"
    root = _generated(
        make_project, cli, "# mine\nconveyor-ml==0.1.0\nrequests==2.0.0\n",
        f"workflows:\n  conveyor_requirement: {requirement}\n",
    )  # fmt: skip
    assert (root / "requirements.lock").read_text() == f"# mine\n{requirement}\nrequests==2.0.0\n"


def _wheel(folder: Path, name: str, version: str) -> Path:
    """A real, minimal pure-Python wheel of ``name`` ``version`` (an empty package) in ``folder``."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": b"",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
        f"{len(data)}"
        for path, data in files.items()
    ]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


@pytest.fixture
def local_index(tmp_path, monkeypatch) -> Path:
    """pip configured, as a team would in pip.conf or PIP_* variables, with a package index of its own:
    one folder of wheels and no other index, and this machine's pip configuration files ignored —
    so the check asks pip exactly what it asks in CI, with no network and no time spent waiting."""
    wheels = tmp_path / "wheels"
    _wheel(wheels, "pinned-probe", "1.0")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip reads no configuration file
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)
    return wheels


def test_check_fails_on_a_pin_that_does_not_resolve(make_project, cli, local_index):
    root = _generated(make_project, cli, "conveyor-ml==0.1.0\n")
    (root / "requirements.lock").write_text("pinned-probe==1.0\nconveyor-ml==0.0.0.dev987654\n")  # not served
    result = cli("--project", root, "workflows", "check", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    [finding] = result.json()["findings"]
    assert finding["tool"] == "pip"
    assert finding["message"].startswith(
        "requirements.lock: a pin does not resolve on the configured package index: "
    )
    assert "conveyor-ml==0.0.0.dev987654" in finding["message"]
    assert "\n" not in finding["message"]


def test_check_passes_a_pin_that_resolves(make_project, cli, local_index):
    root = _generated(make_project, cli, "conveyor-ml==0.1.0\n")
    (root / "requirements.lock").write_text("pinned-probe==1.0\n")
    result = cli("--project", root, "workflows", "check", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["findings"] == []
    (root / "requirements.lock").write_text("pinned-probe==1.1\n")  # the index has 1.0 only
    moved = cli("--project", root, "workflows", "check", "--json")
    assert moved.exit_code == 1
    assert "pinned-probe==1.1" in moved.json()["findings"][0]["message"]


@pytest.mark.slow
def test_the_wheel_installs_in_a_fresh_venv_and_runs(tmp_path):
    """`python -m build --wheel`, then a fresh virtual environment installs it with the `dvc` extra
    only (`init` versions the data; the pinned closure as constraints) and `conveyor --help` runs."""
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [wheel] = dist.glob("conveyor_ml-*.whl")
    env = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(env)
    python = str(env / "bin" / "python")
    pip = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "-c", str(ROOT / "requirements.lock"), f"{wheel}[dvc]"],
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]
    helped = subprocess.run(
        [str(env / "bin" / "conveyor"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert helped.returncode == 0, helped.stderr
    assert "init" in helped.stdout
    assert "workflows" in helped.stdout
    _the_core_install_checks_data_and_names_the_missing_extras(env, tmp_path)
    # the templates ship in the wheel (init and the reports read them as package data)
    listing = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True, check=True
    ).stdout
    shipped = (
        "templates/README.md.tmpl",
        "reports/templates/report.html",
        "monitoring/templates/monitor.md",
        "data/templates/drift.html",
    )
    for template in shipped:
        assert f"conveyor/{template}" in listing


def _the_core_install_checks_data_and_names_the_missing_extras(env: Path, tmp_path: Path) -> None:
    """The wheel without the model extras: no model library is installed, yet a project is made and
    its data checked; training and the operations page name the extra that would make them work."""
    python, conveyor = str(env / "bin" / "python"), str(env / "bin" / "conveyor")
    for module in ("implicit", "xgboost", "lightgbm"):
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True)
        assert found.returncode == 1, f"{module} is installed by the core install"
    project = tmp_path / "core-shop"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([conveyor, *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)

    made = run("init", str(project), "--template", "recommender")
    assert made.returncode == 0, made.stderr[-2000:]
    checked = run("--project", str(project), "validate")
    assert checked.returncode == 0, checked.stderr[-2000:]
    refused = run("--project", str(project), "train")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "conveyor: ExtensionError: model type als needs implicit, which is in Conveyor's 'recommender' "
        "extra: pip install 'conveyor-ml[recommender]'"
    ]
    paged = run("--project", str(project), "ui", "--port", "0")  # nothing the core needs installs it
    assert paged.returncode == 2
    assert paged.stderr.strip().splitlines() == [
        "conveyor: ExtensionError: conveyor ui needs python-multipart, which is in Conveyor's 'ui' extra: "
        "pip install 'conveyor-ml[ui]'"
    ]
