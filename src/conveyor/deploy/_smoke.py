"""Smoke tests of a running endpoint: alive, ready, the contract, sane outputs, fast enough.

Checks, each with its verdict and a one-line detail:

* ``health`` / ``ready`` — ``GET /health`` and ``GET /ready`` answer 200;
* ``version`` — the server serves the expected version (when one is given);
* ``contract`` — every answer has the documented fields with their types;
* ``sanity`` — classifier: probabilities in [0, 1] summing to 1 per row, one
  prediction per row; recommender: lists non-empty, unique, of length k, and
  not all equal to the popularity list (the answer for an unknown user);
* ``latency`` — the p95 of ``deploy.smoke.requests`` client-side round trips
  under ``deploy.smoke.latency_budget_ms``.

Inputs come from the project's data source: a few known user ids for a
recommender, a few rows without the target column for a classifier.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from conveyor.errors import ConveyorError, UsageError
from conveyor.project import Project

SAMPLE_ROWS = 20
UNKNOWN_USER = "__conveyor_smoke_unknown_user__"
_TIMEOUT = 10.0


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    ok: bool
    detail: str


@dataclass
class SmokeReport:
    url: str
    checks: list[SmokeCheck] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(SmokeCheck(name, ok, detail))
        return ok

    def failures(self) -> list[SmokeCheck]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "url": self.url,
            "checks": [c.__dict__ for c in self.checks],
            "latency_ms": self.latency_ms,
        }


def _sample_inputs(project: Project, kind: str) -> list[Any]:
    """A few user ids (recommender) or feature rows (classifier) from the data source."""
    from conveyor.data import read_table

    try:
        frame = read_table(project.data_source)
    except ConveyorError:
        return []
    settings = project.settings.data
    if kind == "recommender":
        column = settings.columns.user
        if column not in frame.columns:
            return []
        return frame.get_column(column).unique(maintain_order=True).head(SAMPLE_ROWS).to_list()
    drop = [c for c in (settings.target,) if c and c in frame.columns]
    rows: list[dict[str, Any]] = frame.drop(drop).drop_nulls().head(SAMPLE_ROWS).to_dicts()
    return rows


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = client.post(path, json=body)
    return response, (time.perf_counter() - started) * 1000


def _contract(body: Any, fields: dict[str, type | tuple[type, ...]]) -> str | None:
    if not isinstance(body, dict):
        return f"the body is a {type(body).__name__}, not an object"
    for name, kind in fields.items():
        if name not in body:
            return f"field {name!r} missing"
        if not isinstance(body[name], kind):
            return f"field {name!r} is a {type(body[name]).__name__}"
    return None


_COMMON = {"model_version": str, "variant": str, "request_id": str}


def _smoke_recommender(
    client: httpx.Client, report: SmokeReport, users: list[Any], k: int, n: int
) -> list[float]:
    latencies: list[float] = []
    unknown, ms = _post(client, "/recommend", {"user_id": UNKNOWN_USER, "k": k})
    latencies.append(ms)
    popular = unknown.json().get("items") if unknown.status_code == 200 else None
    contract_problem: str | None = None
    sanity: list[str] = []
    personal: list[list[Any]] = []
    users = users or list(range(n))
    for i in range(n):
        user = users[i % len(users)]
        response, ms = _post(client, "/recommend", {"user_id": user, "k": k})
        latencies.append(ms)
        if response.status_code != 200:
            contract_problem = (
                contract_problem or f"/recommend for user {user!r}: HTTP {response.status_code}"
            )
            continue
        body = response.json()
        problem = _contract(body, {**_COMMON, "items": list, "scores": list, "fallback": bool})
        if problem:
            contract_problem = contract_problem or f"/recommend: {problem}"
            continue
        items, scores = body["items"], body["scores"]
        if len(scores) != len(items) or not all(_is_number(s) for s in scores):
            sanity.append(f"user {user!r}: scores do not match items")
        if not items:
            sanity.append(f"user {user!r}: empty list")
        elif len(items) != k:
            sanity.append(f"user {user!r}: {len(items)} items, expected k = {k}")
        elif len(set(map(str, items))) != len(items):
            sanity.append(f"user {user!r}: duplicate items")
        if not body["fallback"]:
            personal.append(items)
    report.add("contract", contract_problem is None, contract_problem or f"{n + 1} answers had every field")
    if popular is not None and not personal:
        sanity.append("every user got the popularity fallback")
    elif popular is not None and all(items == popular for items in personal):
        sanity.append("every personal list equals the popularity list")
    report.add(
        "sanity", not sanity, "; ".join(sanity[:3]) or f"{len(personal)} personal lists of {k} unique items"
    )
    return latencies


def _smoke_classifier(
    client: httpx.Client, report: SmokeReport, rows: list[dict[str, Any]], n: int
) -> list[float]:
    latencies: list[float] = []
    if not rows:
        report.add("contract", False, "no input rows: the data source is unreadable or empty")
        return latencies
    rows = [dict(r) for r in rows]
    # The data may hold columns the model does not use (ids, timestamps): drop
    # the ones the server names as unknown and try again.
    for _ in range(len(rows[0])):
        response, ms = _post(client, "/predict", {"rows": rows})
        field_name = str(response.json().get("field") or "") if response.status_code == 422 else ""
        if not field_name.startswith("rows.") or "unknown feature" not in response.text:
            break
        unknown = field_name.rsplit(".", 1)[-1]
        rows = [{k: v for k, v in r.items() if k != unknown} for r in rows]
    if response.status_code != 200:
        report.add("contract", False, f"/predict: HTTP {response.status_code}: {response.text[:200]}")
        return latencies
    body = response.json()
    problem = _contract(body, {**_COMMON, "predictions": list, "probabilities": list, "classes": list})
    sanity: list[str] = []
    if problem is None:
        probs = body["probabilities"]
        if len(body["predictions"]) != len(rows) or len(probs) != len(rows):
            sanity.append(f"{len(rows)} rows in, {len(body['predictions'])} predictions out")
        for i, row in enumerate(probs):
            if not isinstance(row, list) or not all(_is_number(p) and 0 <= p <= 1 for p in row):
                sanity.append(f"row {i}: probabilities outside [0, 1]")
            elif abs(sum(row) - 1) > 1e-6:
                sanity.append(f"row {i}: probabilities sum to {sum(row):.4f}")
    report.add(
        "contract", problem is None, f"/predict: {problem}" if problem else "the answer had every field"
    )
    report.add(
        "sanity", problem is None and not sanity, "; ".join(sanity[:3]) or f"{len(rows)} rows answered"
    )
    for i in range(n):
        response, ms = _post(client, "/predict", {"features": rows[i % len(rows)]})
        latencies.append(ms)
        if response.status_code != 200:
            report.add("contract", False, f"single-row /predict: HTTP {response.status_code}")
            break
    return latencies


def _warm_up(client: httpx.Client, kind: str, inputs: list[Any], k: int, calls: int) -> None:
    """Untimed calls first: a freshly started server pays one-time costs on its first answers."""
    for i in range(calls):
        if kind == "recommender":
            user = inputs[i % len(inputs)] if inputs else UNKNOWN_USER
            client.post("/recommend", json={"user_id": user, "k": k})
        elif inputs:
            client.post("/predict", json={"features": inputs[i % len(inputs)]})


def smoke_test(
    project: Project,
    base_url: str,
    *,
    expect_version: str | None = None,
    warm_up: int = 0,
    expect_env: str | None = None,
) -> SmokeReport:
    """Run every smoke check against the server at ``base_url``.

    ``warm_up`` untimed requests go first (a side server started for this test is
    cold; production's servers are not when they take traffic). With ``expect_env``,
    a server of another project or environment is refused (UsageError, one line)
    before any check runs.
    """
    settings = project.settings.deploy.smoke
    report = SmokeReport(base_url)
    with httpx.Client(base_url=base_url, timeout=_TIMEOUT) as client:
        try:
            health = client.get("/health")
            report.add("health", health.status_code == 200, f"GET /health: HTTP {health.status_code}")
            ready = client.get("/ready")
            if not report.add("ready", ready.status_code == 200, f"GET /ready: HTTP {ready.status_code}"):
                return report
            state = client.get("/version").json()
            if expect_env is not None:
                _check_identity(project, base_url, expect_env, state)
            kind = str(state.get("kind"))
            if expect_version is not None:
                serving = [v["version"] for v in state.get("versions", []) if v.get("share", 0) > 0]
                report.add(
                    "version",
                    serving == [expect_version],
                    f"serving {', '.join(serving) or 'nothing'}; expected {expect_version}",
                )
            inputs = _sample_inputs(project, kind)
            _warm_up(client, kind, inputs, project.settings.model.k, warm_up)
            if kind == "recommender":
                latencies = _smoke_recommender(
                    client, report, inputs, project.settings.model.k, settings.requests
                )
            else:
                latencies = _smoke_classifier(client, report, inputs, settings.requests)
        except httpx.HTTPError as exc:
            report.add("health", False, f"{base_url}: {type(exc).__name__}: the server did not answer")
            return report
        except ValueError as exc:
            report.add("contract", False, f"an answer was not valid JSON ({exc})")
            return report
    if latencies:
        arr = np.asarray(latencies)
        report.latency_ms = {
            "p50": float(np.percentile(arr, 50)),
            "p95": float(np.percentile(arr, 95)),
            "max": float(arr.max()),
        }
        budget = settings.latency_budget_ms
        p95 = report.latency_ms["p95"]
        report.add(
            "latency", p95 <= budget, f"p95 {p95:.1f} ms over {len(arr)} requests; budget {budget:g} ms"
        )
    return report


def _check_identity(project: Project, base_url: str, env: str, state: Any) -> None:
    """Refuse a server that belongs to another project or environment (one line, exit 2)."""
    identity = project.settings.project.identity
    body = state if isinstance(state, dict) else {}
    if body.get("project") != identity or body.get("env") != env:
        owner = f"project {body.get('project')!r}, environment {body.get('env')!r}"
        raise UsageError(
            f"the server at {base_url} belongs to {owner}, not to {identity!r}/{env!r}; "
            f"check deploy.environments.{env}",
            environment=env,
            url=base_url,
        )
