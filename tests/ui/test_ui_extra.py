"""`conveyor ui` without its extra: one line naming `conveyor-ml[ui]`, exit 2, and no server."""

from __future__ import annotations

import subprocess
import sys

# python-multipart installs both names; FastAPI falls back from one to the other
WITHOUT_MULTIPART = "import sys; sys.modules['python_multipart'] = None; sys.modules['multipart'] = None; "


def test_ui_without_python_multipart_names_the_ui_extra(make_project) -> None:
    root = make_project("project: {name: shop}\n")
    args = ["--project", str(root), "ui", "--port", "0"]
    code = f"{WITHOUT_MULTIPART}from conveyor.cli import main; sys.exit(main({args!r}))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "conveyor: ExtensionError: conveyor ui needs python-multipart, which is in Conveyor's 'ui' extra: "
        "pip install 'conveyor-ml[ui]'"
    ]
    assert done.stdout == ""
