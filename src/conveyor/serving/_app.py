"""The FastAPI application: ``create_app(settings, loader=...)``.

Handlers validate, route, and await the version's micro-batcher; the model runs in
worker threads. Every answer after routing is counted in the metrics and queued for
the request log. Bad input is always a 4xx naming the field (see docs/serving.md).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from conveyor import __version__
from conveyor.config import Settings, secret_from_env
from conveyor.errors import UsageError
from conveyor.models import Model
from conveyor.requestlog import MODEL_ERROR, RequestLog, RequestLogLocation
from conveyor.serving._admin import admin_router
from conveyor.serving._batcher import BatcherClosed
from conveyor.serving._docs import install_offline_docs
from conveyor.serving._limits import BodyLimit
from conveyor.serving._loader import ModelLoader
from conveyor.serving._metrics import CONTENT_TYPE, NONE_LABEL, ServerMetrics
from conveyor.serving._openapi import model_openapi
from conveyor.serving._router import Served
from conveyor.serving._schemas import (
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    PredictRequest,
    PredictResponse,
    RecommendRequest,
    RecommendResponse,
    VersionResponse,
)
from conveyor.serving._state import ServerState
from conveyor.serving._validation import BadRequest, check_rows

_log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (409, 413, 422, 500, 503)
}


_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
# request ids only need to be unique, not secret: 128 bits from a generator seeded once by
# the OS, without the system call and UUID object of ``uuid.uuid4()`` on every request
_ids = random.Random(os.urandom(32))


def new_request_id() -> str:
    """A fresh 32-character hex request id."""
    return f"{_ids.getrandbits(128):032x}"


def json_bytes(payload: Any) -> bytes:
    """``payload`` as JSON (orjson: ~6 x faster than ``json`` on these bodies).

    orjson refuses integers beyond 64 bits (a client may send such an id); those
    bodies take the standard library's path.
    """
    try:
        return orjson.dumps(payload, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(payload, default=str, separators=(",", ":")).encode()


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json_bytes(payload), status_code=status, media_type="application/json")


def error(status: int, field: str | None, problem: str) -> Response:
    """The one error body: ``{"detail": "<field>: <problem>", "field": ...}``."""
    detail = f"{field}: {problem}" if field else problem
    return json_response({"detail": detail, "field": field}, status)


def model_error(exc: BaseException) -> Response:
    """The answer when the model itself raised: a server-side failure, not the caller's fault."""
    problem = f"the model failed on this input ({type(exc).__name__}: {_one_line(exc)})"
    return json_response({"detail": problem, "field": None, "error": MODEL_ERROR}, 500)


def admin_token(settings: Settings, env: str | None = None) -> str | None:
    """The admin bearer token from the environment, or None (admin endpoints off).

    The variable is the environment's ``admin_token_env`` (replicas given by URL), else
    ``serving.admin_token_env``.
    """
    environment = settings.deploy.environments.get(env) if env is not None else None
    var = (
        environment.admin_token_env if environment is not None else None
    ) or settings.serving.admin_token_env
    if not var:
        return None
    try:
        return secret_from_env(var, purpose="serving admin token")
    except UsageError:
        return None


def create_app(
    settings: Settings,
    *,
    loader: ModelLoader,
    env: str = "production",
    log_dir: RequestLogLocation | None = None,
    preloaded: Mapping[str, Model] | None = None,
) -> FastAPI:
    """The model server of environment ``env``.

    ``loader`` turns version ids into models (the registry for ``conveyor serve``);
    the versions in ``preloaded`` serve from the start (the first one is primary) and
    ``loader.initial_versions()`` not among them are loaded at startup. ``log_dir``
    holds the request log, a folder or an S3 location (None: no request log). The admin
    token is read once, here, from the environment variable named by ``serving.admin_token_env``.
    """
    serving = settings.serving
    metrics = ServerMetrics()
    request_log = None
    if log_dir is not None:
        request_log = RequestLog(
            log_dir,
            flush_rows=serving.request_log.flush_rows,
            flush_seconds=serving.request_log.flush_seconds,
            on_written=lambda kind, n: metrics.log_written.labels(kind).inc(n),
            on_dropped=lambda kind, n: metrics.log_dropped.labels(kind).inc(n),
        )
    state = ServerState(
        env=env,
        project=settings.project.identity,
        serving=serving,
        loader=loader,
        metrics=metrics,
        request_log=request_log,
    )
    for version, model in (preloaded or {}).items():
        state.add(version, model)
    token = admin_token(settings, env)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.start()
        for version in loader.initial_versions():
            await state.load(version)
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="Conveyor model server",
        version=__version__,
        description="Predictions and recommendations from registered model versions (docs/serving.md).",
        lifespan=lifespan,
        # /docs is served offline by install_offline_docs (Swagger UI's assets from a package)
        docs_url=None,
        redoc_url=None,
        # FastAPI's native OpenTelemetry hooks cost a provider lookup per request; the
        # server reports through its own Prometheus metrics instead
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.conveyor = state
    app.openapi = model_openapi(app.openapi, state)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, max_bytes=serving.max_body_bytes)
    _install_error_handlers(app)
    install_offline_docs(app)
    if token:
        app.include_router(admin_router(state, token))

    def finish(
        endpoint: str,
        *,
        request_id: str,
        served: Served | None,
        variant: str | None,
        user_id: int | str | None,
        features: Any,
        output: Any,
        status: int,
        started: float,
        outcome: str | None = None,
        warnings: list[dict[str, str]] | None = None,
    ) -> None:
        seconds = time.perf_counter() - started
        version = served.version if served is not None else None
        metrics.observe(endpoint, version, variant, status, seconds)
        if outcome == MODEL_ERROR:
            metrics.model_errors.labels(endpoint, version or NONE_LABEL, variant or NONE_LABEL).inc()
        if warnings:
            metrics.count_warnings(endpoint, version, variant, warnings)
        if request_log is not None:
            request_log.log_prediction(
                request_id=request_id,
                env=env,
                model_version=version,
                variant=variant,
                endpoint=endpoint,
                user_id=user_id,
                features=features,
                output=output,
                latency_ms=seconds * 1000.0,
                status=status,
                outcome=outcome,
                warnings=warnings,
            )
        if version is not None and variant is not None and status < 400:
            state.recent_requests.put(request_id, (version, variant))
            if user_id is not None:
                state.recent_users.put(str(user_id), (version, variant))

    def route(user_id: int | str | None, kind: str, other: str) -> tuple[Served, str]:
        routing = state.routing
        served = routing.choose(user_id)
        if served is None:
            raise BadRequest(503, "model", "no model version is loaded")
        if served.model.kind != kind:
            raise BadRequest(409, "endpoint", f"the served model is a {served.model.kind}; use {other}")
        return served, routing.variant(served.version)

    @app.post("/predict", responses={200: {"model": PredictResponse}, **_ERRORS})
    async def predict(body: PredictRequest) -> Response:
        """Class predictions and probabilities for one row (`features`) or a batch (`rows`)."""
        started = time.perf_counter()
        request_id = new_request_id()
        rows = [body.features] if body.features is not None else body.rows
        log = partial(
            finish, "/predict", request_id=request_id, user_id=body.user_id, features=rows, started=started
        )
        served: Served | None = None
        variant: str | None = None
        warnings: list[dict[str, Any]] = []
        for _attempt in range(3):
            try:
                served, variant = chosen, arm = route(body.user_id, "classifier", "/recommend")
                if (body.features is not None and body.rows is not None) or rows is None:
                    raise BadRequest(422, "body", "give exactly one of 'features' or 'rows'")
                if not rows:
                    raise BadRequest(422, "rows", "must hold at least one row")
                if len(rows) > serving.max_rows_per_request:
                    limit = serving.max_rows_per_request
                    raise BadRequest(413, "rows", f"{len(rows)} rows exceed the limit of {limit}")
                warnings = check_rows(
                    rows,
                    served.feature_specs or {},
                    prefix="features" if body.features is not None else "rows",
                )
                answer = await served.batcher.submit(rows)
            except BatcherClosed:
                continue  # the version was unloaded after routing: route again
            except BadRequest as exc:
                log(served=served, variant=variant, output=None, status=exc.status)
                return error(exc.status, exc.field, _problem(exc))
            except Exception as exc:
                _log.warning(
                    "model %s failed: %s: %s", version_of(served), type(exc).__name__, _one_line(exc)
                )
                log(served=served, variant=variant, output=None, status=500, outcome=MODEL_ERROR)
                return model_error(exc)
            payload = {
                **answer,
                "warnings": warnings,
                "model_version": chosen.version,
                "variant": arm,
                "request_id": request_id,
            }
            log(served=chosen, variant=arm, output=answer, status=200, warnings=warnings)
            return json_response(payload)
        return error(503, "model", "model versions changed during the request; retry")

    @app.post("/recommend", responses={200: {"model": RecommendResponse}, **_ERRORS})
    async def recommend(body: RecommendRequest) -> Response:
        """Top-k items for a user; unknown users get the popularity fallback (`fallback: true`)."""
        started = time.perf_counter()
        request_id = new_request_id()
        asked = {"k": body.k, "exclude_seen": body.exclude_seen}
        log = partial(
            finish, "/recommend", request_id=request_id, user_id=body.user_id, features=asked, started=started
        )
        served: Served | None = None
        variant: str | None = None
        for _attempt in range(3):
            try:
                served, variant = chosen, arm = route(body.user_id, "recommender", "/predict")
                answer = await served.batcher.submit((body.user_id, body.k, body.exclude_seen))
            except BatcherClosed:
                continue
            except BadRequest as exc:
                log(served=served, variant=variant, output=None, status=exc.status)
                return error(exc.status, exc.field, _problem(exc))
            except Exception as exc:
                _log.warning(
                    "model %s failed: %s: %s", version_of(served), type(exc).__name__, _one_line(exc)
                )
                log(served=served, variant=variant, output=None, status=500, outcome=MODEL_ERROR)
                return model_error(exc)
            if answer["fallback"]:
                metrics.fallbacks.labels(chosen.version, arm).inc()
            payload = {
                "user_id": body.user_id,
                **answer,
                "model_version": chosen.version,
                "variant": arm,
                "request_id": request_id,
            }
            log(served=chosen, variant=arm, output=answer, status=200)
            return json_response(payload)
        return error(503, "model", "model versions changed during the request; retry")

    @app.post(
        "/feedback",
        status_code=202,
        responses={
            202: {"model": FeedbackResponse},
            409: {"model": ErrorResponse},
            422: {"model": ErrorResponse},
        },
    )
    async def feedback(body: FeedbackRequest) -> Response:
        """Record a click, add-to-cart or purchase, or the true label of a `/predict` answer,
        attributed to the version that served it."""
        started = time.perf_counter()
        try:
            event, item_id = _feedback_event(body)
            if event == "label" and state.routing.kind == "recommender":
                raise BadRequest(409, "label", "the served model is a recommender; labels are for /predict")
        except BadRequest as exc:
            metrics.observe("/feedback", None, None, exc.status, None)
            return error(exc.status, exc.field, _problem(exc))
        origin = None
        if body.request_id is not None:
            origin = state.recent_requests.get(body.request_id)
        if origin is None and body.user_id is not None:
            origin = state.recent_users.get(str(body.user_id))
        version, variant = origin if origin is not None else (None, None)
        metrics.feedback.labels(event, version or "none", variant or "none").inc()
        metrics.observe("/feedback", version, variant, 202, time.perf_counter() - started)
        if request_log is not None:
            request_log.log_feedback(
                request_id=body.request_id,
                user_id=body.user_id,
                item_id=item_id,
                event=event,
                model_version=version,
                variant=variant,
            )
        payload = {
            "accepted": True,
            "request_id": body.request_id,
            "model_version": version,
            "variant": variant,
        }
        return json_response(payload, 202)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Alive."""
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"description": "no model version serves traffic"}})
    async def ready() -> Response:
        """200 when a model version is loaded and has traffic, else 503."""
        routing = state.routing
        ok = bool(routing.shares)
        body = {"ready": ok, "versions": sorted(routing.served)}
        return json_response(body, 200 if ok else 503)

    @app.get("/version", response_model=VersionResponse)
    async def version_info() -> dict[str, Any]:
        """Loaded versions, their variants and traffic shares, and the routing mode."""
        return state.routing.describe(env, state.project)

    @app.get("/metrics", response_class=Response)
    async def metrics_text() -> Response:
        """Prometheus text exposition."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app


def version_of(served: Served | None) -> str:
    return served.version if served is not None else NONE_LABEL


def _feedback_event(body: FeedbackRequest) -> tuple[str, int | str]:
    """(event, item_id to log) of a feedback body; a label is logged as its text in item_id.

    The text is what the monitor compares with the logged prediction: strings as they
    are, integers in decimal, booleans as ``true``/``false`` (as JSON writes them).
    """
    event = body.event if body.event is not None else ("label" if body.label is not None else None)
    if event is None:
        raise BadRequest(422, "event", "Field required (click, add_to_cart, purchase or label)")
    if event != "label":
        if body.label is not None:
            raise BadRequest(422, "label", "only with event 'label'")
        if body.item_id is None:
            raise BadRequest(422, "item_id", "Field required")
        if body.request_id is None and body.user_id is None:
            raise BadRequest(422, "body", "give request_id or user_id")
        return event, body.item_id
    if body.label is None:
        raise BadRequest(422, "label", "Field required with event 'label'")
    if body.request_id is None:
        raise BadRequest(422, "request_id", "Field required for a label (the id of the /predict answer)")
    if body.item_id is not None:
        raise BadRequest(422, "item_id", "not used with a label; give the class in 'label'")
    label = body.label
    return event, ("true" if label else "false") if isinstance(label, bool) else str(label)


def _problem(exc: BadRequest) -> str:
    return exc.message.removeprefix(f"{exc.field}: ") if exc.field else exc.message


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


_UNION_TAG = re.compile(r"^(int|float|str|bool|none|constrained-str|[a-z-]+\[.*\])$")


def _field_of(first: Mapping[str, Any], errors: Sequence[Mapping[str, Any]]) -> str:
    """The dotted field of a pydantic error, without "body" and without union-member tags."""
    loc = tuple(first.get("loc", ()))
    while len(loc) > 1 and isinstance(loc[-1], str) and _UNION_TAG.match(loc[-1]):
        tagged_siblings = [
            e
            for e in errors
            if len(e["loc"]) == len(loc) and tuple(e["loc"][:-1]) == loc[:-1] and e["loc"] != loc
        ]
        if not tagged_siblings and not first.get("type", "").endswith("_type"):
            break
        loc = loc[:-1]
    parts = [str(part) for part in loc if part != "body"]
    return ".".join(parts) or "body"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        first = errors[0] if errors else {}
        field = _field_of(first, errors)
        kind = first.get("type", "")
        if kind == "json_invalid":
            return error(422, "body", "invalid JSON")
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        if kind == "model_attributes_type" or (kind == "dict_type" and field == "body"):
            message = "expected a JSON object"
        return error(422, field, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        field = getattr(exc, "field", None)
        headers = getattr(exc, "headers", None)
        response = error(exc.status_code, field, str(exc.detail))
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> Response:
        _log.error("internal error: %s: %s", type(exc).__name__, _one_line(exc))
        body = {"detail": f"internal error ({type(exc).__name__})", "field": None, "error": "internal_error"}
        return json_response(body, 500)
