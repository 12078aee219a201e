"""The UI tests reuse the deployment tests' project: registered versions, servers cleaned up."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "deploy_fixtures", Path(__file__).parents[1] / "deploy" / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
_deploy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_deploy)

registered_template = _deploy.registered_template
deploy_project = _deploy.deploy_project
