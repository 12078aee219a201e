"""Admin endpoints: load, traffic, switch, rollback, unload — behind a bearer token.

Mounted only when a token is configured (otherwise every ``/admin/*`` path is 404).
The token is compared in constant time and never logged, echoed or put in an error.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from conveyor.errors import ConveyorError, IntegrityError
from conveyor.serving._loader import VersionNotFound
from conveyor.serving._router import Routing, RoutingConflict
from conveyor.serving._schemas import ErrorResponse, TrafficRequest, VersionRequest, VersionResponse
from conveyor.serving._state import ServerState

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def admin_router(state: ServerState, token: str) -> APIRouter:
    """The ``/admin`` routes of one server, checking ``Authorization: Bearer <token>``."""
    expected = token.encode()

    async def authorised(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(401, "admin: missing or wrong bearer token", headers=_CHALLENGE)

    router = APIRouter(
        prefix="/admin",
        tags=["admin"],
        dependencies=[Depends(authorised)],
        responses={
            401: {"model": ErrorResponse},
            404: {"model": ErrorResponse},
            409: {"model": ErrorResponse},
        },
    )

    def answer(routing: Routing) -> dict[str, Any]:
        return routing.describe(state.env, state.project)

    @router.post("/load", response_model=VersionResponse)
    async def load(body: VersionRequest) -> Any:
        """Load a registry version beside the serving ones (share 0 until traffic is set)."""
        version = str(body.version)
        try:
            return answer(await state.load(version))
        except VersionNotFound as exc:
            return _conflict(404, "version", str(exc))
        except IntegrityError as exc:
            return _conflict(409, "version", f"version {version} failed its checksum: {exc}")
        except RoutingConflict as exc:
            return _conflict(409, "version", str(exc))
        except ConveyorError as exc:
            return _conflict(409, "version", f"version {version} could not be loaded: {exc}")

    @router.post("/traffic", response_model=VersionResponse)
    async def traffic(body: TrafficRequest) -> Any:
        """Set the traffic split (weights normalised), the mode and the sticky salt."""
        try:
            return answer(await state.set_traffic(body.weights, body.mode, body.salt))
        except RoutingConflict as exc:
            return _conflict(409, "weights", str(exc).removeprefix("weights: "))

    @router.post("/switch", response_model=VersionResponse)
    async def switch(body: VersionRequest) -> Any:
        """Blue-green: make a loaded version primary with all traffic, atomically."""
        try:
            return answer(await state.switch(str(body.version)))
        except RoutingConflict as exc:
            return _conflict(409, "version", str(exc))

    @router.post("/rollback", response_model=VersionResponse)
    async def rollback() -> Any:
        """All traffic back to the primary, or back to the previous primary."""
        try:
            return answer(await state.rollback())
        except RoutingConflict as exc:
            return _conflict(409, None, str(exc))

    @router.post("/unload", response_model=VersionResponse)
    async def unload(body: VersionRequest) -> Any:
        """Free a loaded version that has no traffic."""
        try:
            return answer(await state.unload(str(body.version)))
        except RoutingConflict as exc:
            return _conflict(409, "version", str(exc))

    return router


def _conflict(status: int, field: str | None, problem: str) -> Response:
    detail = f"{field}: {problem}" if field else problem
    return JSONResponse({"detail": detail, "field": field}, status_code=status)
