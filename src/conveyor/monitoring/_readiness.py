"""The readiness check: every replica of every deployed environment is up and serves what it should.

The request log says how production *did*; this check asks how it *is*: each
environment the ledger has deployed must answer ``GET /ready`` with 200 and ``GET /version`` with the ledger's
primary version, under its own environment name. A server that is down,
not ready, serving another version or answering as another environment
fails the check, so ``conveyor monitor`` exits 1 and alerts. An environment
never deployed is not expected to run and is not checked.

The expected versions come in as data (environment -> primary version): the
caller reads them from the deploy ledger (:func:`conveyor.deploy.deployed_versions`),
so monitoring does not import deploy (deploy imports monitoring to send its alerts).

Every replica is probed: the local server (its configured host and port) or
each URL of ``deploy.environments.<env>.replicas``. A server that answers as
another project (``project`` in ``/version``, the project's id) fails too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from conveyor.monitoring._checks import CheckResult
from conveyor.project import Project

READY_TIMEOUT_SECONDS = 2.0


def replica_urls(project: Project, env: str) -> list[str]:
    """The URLs of ``env``'s replicas: its ``replicas``, or its local server's host and port."""
    settings = project.settings.deploy.environments[env]
    return settings.replica_urls() if settings.remote else [f"http://{settings.host}:{settings.port}"]


def environment_problems(project: Project, env: str, expected: str | None = None) -> list[str]:
    """``"<url>: <problem>"`` for each replica of ``env`` that is down, not ready, another project's
    or environment's, or (given ``expected``) serving another version; empty when all are up."""
    identity = project.settings.project.identity
    found = [(url, _probe(url, env, expected, identity)) for url in replica_urls(project, env)]
    return [f"{url}: {problem}" for url, problem in found if problem is not None]


def _probe(url: str, env: str, expected: str | None, project_id: str) -> str | None:
    """The problem with the replica at ``url``, or None when it is ready (with ``expected``)."""
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
    if body.get("project") != project_id:
        return f"answers as project {body.get('project')!r}, not {project_id!r}"
    if body.get("env") != env:
        return f"answers as environment {body.get('env')!r}"
    if expected is not None and str(body.get("primary")) != expected:
        return f"serves version {body.get('primary')}, the ledger says {expected}"
    return None


def readiness_check(project: Project, deployed: Mapping[str, str] | None) -> CheckResult:
    """``pass`` when every replica of every deployed environment is ready with its expected version.

    ``deployed`` maps each deployed environment to the primary version the ledger
    says it serves; None when the caller did not read the ledger (not checked).
    """
    if deployed is None:
        return CheckResult("readiness", "skipped", "no deployed versions given (the ledger was not read)")
    replicas: list[dict[str, Any]] = []
    for name in project.settings.deploy.environments:
        expected = deployed.get(name)
        if expected is None:
            continue
        for url in replica_urls(project, name):
            problem = _probe(url, name, expected, project.settings.project.identity)
            replicas.append({
                "environment": name, "url": url, "expected_version": expected,
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
