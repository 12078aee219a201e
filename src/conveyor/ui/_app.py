"""The operations page's FastAPI application: ``create_ui_app(project)``.

Read-only. Every page is rendered on the server from the panels of
:mod:`conveyor.ui._panels`; the only script-free style sheet is served by the
application itself (works offline). An unknown page is a 404; nothing is a 500.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from conveyor import __version__
from conveyor.project import Project
from conveyor.ui import _panels

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


def create_ui_app(project: Project) -> FastAPI:
    """The operations page of ``project`` (read-only)."""
    app = FastAPI(title="Conveyor operations", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)  # fmt: skip
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    templates.env.filters["pct"] = _share_pct
    templates.env.filters["num"] = _num
    templates.env.filters["interval"] = _interval

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            f"{name}.html",
            {"project": project.settings.project.name, "pages": PAGES, "current": name, **context},
        )

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
        return page(request, "rollouts", canaries=_panels.canaries(project), ab=_panels.ab_test(project))

    @app.get("/data", response_class=HTMLResponse)
    def data(request: Request) -> HTMLResponse:
        return page(request, "data", **_panels.data(project))

    @app.get("/ab", include_in_schema=False)
    async def ab() -> Response:
        return RedirectResponse("/rollouts#ab")  # the A/B test is a part of the rollouts page

    return app
