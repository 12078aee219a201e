"""Install tests/extensions/toy_plugin the way pip does, into a folder of its own, and run Conveyor with it.

The plugin is a separate package: its own pyproject.toml declares the entry points, and the
installed form is what ``pip install`` writes — the package beside a ``.dist-info`` whose
``entry_points.txt`` lists them — so Conveyor finds it through ``importlib.metadata`` like any
installed plugin. ``conveyor`` runs in a child process with the folder on PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

PLUGIN = Path(__file__).parent / "toy_plugin"


def install_toy_plugin(root: Path) -> Path:
    """The folder to put on sys.path: the toy package and its dist-info (entry points from its pyproject)."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    site = root / "site"
    shutil.copytree(PLUGIN / "toy_conveyor", site / "toy_conveyor")
    info = site / f"toy_conveyor-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    sections = [
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in entries.items())
        for group, entries in project["entry-points"].items()
    ]
    (info / "entry_points.txt").write_text("\n".join(sections))
    return site


def conveyor(
    site: Path | None, cwd: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m conveyor ARGS`` in ``cwd``, with ``site`` (the installed plugin) on PYTHONPATH."""
    path = [str(site)] if site is not None else []
    python_path = os.pathsep.join([*path, os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "COLUMNS": "250", "PYTHONPATH": python_path}
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
