"""``conveyor judge``: the canary verdict over HTTP, for Argo Rollouts' web metric and Flagger's webhook.

``GET /v1/canary?env=E&candidate=V[&baseline=B][&window=10m]`` → 200 with the
verdict, the per-arm rates and each metric's interval / p-value. The verdict is
data, not the status: Argo's ``successCondition`` reads ``$.verdict``.

``POST /v1/flagger`` takes Flagger's webhook payload (``metadata``: ``env``,
``candidate``, optional ``baseline`` and ``window``) and answers 200 when the
candidate passes, 412 otherwise (Flagger counts any non-2xx as a failed check).

Bad input is a 400 with one line (``{"detail": …}``); the judge only reads.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from conveyor.errors import ConveyorError, UsageError
from conveyor.judge._verdict import DEFAULT_WINDOW, judge_canary
from conveyor.project import Project


def _json(body: dict[str, Any], status: int = 200) -> Response:
    # orjson writes NaN and infinity as null (an arm with no requests has no error rate)
    return Response(orjson.dumps(body, default=str), status_code=status, media_type="application/json")


def _bad(message: str) -> Response:
    return _json({"detail": message}, 400)


def _judge(project: Project, params: dict[str, Any]) -> dict[str, Any]:
    from conveyor.monitoring import parse_duration

    env = str(params.get("env") or "production")
    candidate = params.get("candidate")
    if not isinstance(candidate, str | int) or not str(candidate).strip():
        raise UsageError("candidate: the candidate's model version is required (?candidate=V)")
    window = parse_duration(str(params["window"])) if params.get("window") else DEFAULT_WINDOW
    baseline = str(params["baseline"]) if params.get("baseline") else None
    return judge_canary(project, env, str(candidate), baseline, window).to_dict()


def create_judge_app(project: Project) -> FastAPI:
    app = FastAPI(title=f"conveyor judge: {project.settings.project.name}", docs_url=None, redoc_url=None)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/canary")
    def canary(request: Request) -> Response:
        try:
            return _json(_judge(project, dict(request.query_params)))
        except ConveyorError as exc:
            return _bad(str(exc).replace("--since ", "window "))

    @app.post("/v1/flagger")
    async def flagger(request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            return _bad("body: expected Flagger's JSON webhook payload")
        metadata = payload.get("metadata") if isinstance(payload, dict) else None
        if not isinstance(metadata, dict):
            return _bad("metadata: expected an object with env, candidate (and baseline, window)")
        try:
            body = _judge(project, metadata)
        except ConveyorError as exc:
            return _bad(str(exc).replace("--since ", "window "))
        return _json(body, 200 if body["verdict"] == "pass" else 412)

    return app
