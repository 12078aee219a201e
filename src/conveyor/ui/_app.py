"""The operations page's FastAPI application: ``create_ui_app(project)``.

Read-only. Every page is rendered on the server from the panels of
:mod:`conveyor.ui._panels`; the only script-free style sheet is served by the
application itself (works offline). An unknown page is a 404; nothing is a 500.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from conveyor import __version__
from conveyor.errors import ConveyorError
from conveyor.project import Project
from conveyor.ui import _panels
from conveyor.ui._actions import ACTIONS, COOKIE, HEADER, Guard, check_request, http_status, run_action

_HERE = Path(__file__).parent
PAGES = {"environments": "Environments", "rollouts": "Rollouts", "models": "Models", "data": "Data"}


def _share_pct(value: Any) -> str:
    try:
        return f"{float(value) * 100:.4g}"  # the server's shares are fractions of 1
    except (TypeError, ValueError):
        return "-"


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "-" if math.isnan(number) else f"{number:.{digits}g}"  # NaN: no value yet


def _interval(pair: Any, digits: int = 3) -> str:
    """``[low, high]`` as text; an open bound (None) is shown as ``?``."""
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        return ""
    low, high = (("?" if v is None else _num(v, digits)) for v in pair)
    return f"[{low}, {high}]"


def _refused(status: int, line: str) -> PlainTextResponse:
    return PlainTextResponse(line + "\n", status_code=status)


def create_ui_app(project: Project) -> FastAPI:
    """The operations page of ``project``: read-only unless the admin token unlocks its actions."""
    app = FastAPI(title="Conveyor operations", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)  # fmt: skip
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    templates.env.filters["pct"] = _share_pct
    templates.env.filters["num"] = _num
    templates.env.filters["interval"] = _interval

    guard = Guard.of(project)

    def session(request: Request) -> str | None:
        return guard.session(request.cookies.get(COOKIE)) if guard.enabled else None

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            f"{name}.html",
            {"project": project.settings.project.name, "pages": PAGES, "current": name,
             "actions_on": guard.enabled, "unlocked": session(request) is not None, **context},
            status_code=status_code,
        )  # fmt: skip

    @app.middleware("http")
    async def last_resort(request: Request, call_next: Any) -> Response:
        # every part is read on its own (_panels.read_panel); this catches a page that still cannot
        # be drawn, so the operator gets one line and the navigation instead of a bare 500. A
        # middleware, not an exception handler: Starlette re-raises after a handler's answer, and
        # uvicorn then drops the connection (the page never arrives)
        try:
            response: Response = await call_next(request)
        except Exception as exc:
            line = f"this page could not be drawn: {type(exc).__name__}: {_panels.one_line(exc)}"
            return page(request, "broken", line=line)
        return response

    @app.get("/", include_in_schema=False)
    async def home() -> Response:
        return RedirectResponse("/environments")

    @app.get("/environments", response_class=HTMLResponse)
    def environments(request: Request) -> HTMLResponse:
        return page(request, "environments", environments=_panels.environments(project))

    @app.get("/models", response_class=HTMLResponse)
    def models(request: Request) -> HTMLResponse:
        return page(request, "models", **_panels.models(project))

    @app.get("/rollouts", response_class=HTMLResponse)
    def rollouts(request: Request) -> HTMLResponse:
        return page(request, "rollouts", **_panels.rollouts(project))

    @app.get("/data", response_class=HTMLResponse)
    def data(request: Request) -> HTMLResponse:
        return page(request, "data", **_panels.data(project))

    @app.get("/unlock", response_class=HTMLResponse)
    def unlock_form(request: Request) -> HTMLResponse:
        return page(request, "unlock", off=None if guard.enabled else guard.off_reason)

    @app.post("/unlock", response_model=None)
    def unlock(request: Request, token: str = Form("")) -> Response:
        if not guard.enabled:
            return _refused(403, guard.off_reason)
        if not guard.token_matches(token):
            return page(request, "unlock", status_code=403, off=None, wrong=True)
        answer = RedirectResponse("/environments", status_code=303)
        answer.set_cookie(COOKIE, guard.new_session(), httponly=True, samesite="strict")
        return answer

    @app.get("/actions/{action}", response_model=None)
    def confirm(request: Request, action: str, env: str = "production") -> Response:
        known = session(request)
        if known is None:
            return _refused(
                403, guard.off_reason if not guard.enabled else "actions need the admin token: /unlock"
            )
        try:
            check_request(project, action, env, "-")
        except ConveyorError as exc:
            return _refused(http_status(exc), str(exc))
        return page(request, "confirm", action=action, label=ACTIONS[action], env=env,
                    csrf=guard.csrf(known, action, env))  # fmt: skip

    @app.post("/actions/{action}", response_model=None)
    def act(
        request: Request, action: str, env: str = Form(""), why: str = Form(""),
        csrf: str = Form(""), confirm: str = Form(""),
    ) -> Response:  # fmt: skip
        if not guard.enabled:
            return _refused(403, guard.off_reason)
        by_header = guard.token_matches(request.headers.get(HEADER))
        known = session(request)
        if not by_header and known is None:
            return _refused(
                403, "actions need the admin token (unlock the page, or send it in X-Conveyor-Admin-Token)"
            )
        if not by_header and (known is None or not guard.csrf_matches(known, action, env, csrf)):
            return _refused(403, "the confirmation form is stale or foreign: open the action again")
        if confirm != "yes":
            return _refused(400, "confirm: the action runs only when confirmed (confirm=yes)")
        try:
            result = run_action(project, action, env, why)
        except ConveyorError as exc:
            return _refused(http_status(exc), f"{action} refused: {exc}")
        return page(request, "done", action=action, label=ACTIONS[action], env=env, result=result)

    @app.get("/ab", include_in_schema=False)
    async def ab() -> Response:
        return RedirectResponse("/rollouts#ab")  # the A/B test is a part of the rollouts page

    return app
