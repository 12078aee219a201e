"""The readiness check: every replica of every deployed environment is up and serves what it should.

The request log says how production *did*; this check asks how it *is*: each
environment the ledger has deployed (:meth:`conveyor.deploy.Ledger.serving`)
must answer ``GET /ready`` with 200 and ``GET /version`` with the ledger's
primary version, under its own environment name. A server that is down,
not ready, serving another version or answering as another environment
fails the check, so ``conveyor monitor`` exits 1 and alerts. An environment
never deployed is not expected to run and is not checked.

Today an environment is one replica (its configured host and port); the
replicas of issue "Production for real, part 2" join the same list.
"""

from __future__ import annotations

from typing import Any

import httpx

from conveyor.monitoring._checks import CheckResult
from conveyor.project import Project

READY_TIMEOUT_SECONDS = 2.0


def _probe(url: str, env: str, expected: str) -> str | None:
    """The problem with the replica at ``url``, or None when it is ready with ``expected``."""
    try:
        ready = httpx.get(url + "/ready", timeout=READY_TIMEOUT_SECONDS)
        version = httpx.get(url + "/version", timeout=READY_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return f"down ({type(exc).__name__})"
    if ready.status_code != 200:
        return f"not ready (/ready answered {ready.status_code})"
    try:
        body = version.json()
    except ValueError:
        return "/version did not answer JSON"
    if not isinstance(body, dict):
        return "/version did not answer an object"
    if body.get("env") not in (None, "", env):
        return f"answers as environment {body.get('env')!r}"
    if str(body.get("primary")) != expected:
        return f"serves version {body.get('primary')}, the ledger says {expected}"
    return None


def readiness_check(project: Project) -> CheckResult:
    """``pass`` when every replica of every deployed environment is ready with its expected version."""
    from conveyor.deploy import Ledger  # the ledger is the deploy package's record

    ledger = Ledger.of(project)
    replicas: list[dict[str, Any]] = []
    for name, settings in project.settings.deploy.environments.items():
        expected = ledger.serving(name)
        if expected is None:
            continue
        url = f"http://{settings.host}:{settings.port}"
        problem = _probe(url, name, expected.primary)
        replicas.append({
            "environment": name, "url": url, "expected_version": expected.primary,
            "ok": problem is None, "problem": problem,
        })  # fmt: skip
    if not replicas:
        return CheckResult("readiness", "skipped", "no environment deployed yet (nothing in the ledger)")
    failed = [r for r in replicas if not r["ok"]]
    details = {"replicas": replicas, "down_or_wrong": [f"{r['environment']} {r['url']}" for r in failed]}
    if failed:
        summary = "; ".join(f"{r['environment']} ({r['url']}): {r['problem']}" for r in failed)
        return CheckResult("readiness", "fail", summary, details)
    summary = ", ".join(f"{r['environment']} ready with {r['expected_version']}" for r in replicas)
    return CheckResult("readiness", "pass", summary, details)
