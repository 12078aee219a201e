"""``/docs`` offline: Swagger UI's script and style served by the model server itself.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN, so it is blank on a
machine without internet access. This follows FastAPI's documented recipe for
self-hosting the docs assets: the automatic pages are turned off, the assets of the
``swagger-ui-bundle-v2`` package are mounted under ``/docs/assets`` and ``/docs`` is
rendered by FastAPI's own ``get_swagger_ui_html`` with those same-origin URLs. That
package ships Swagger UI 5, which reads FastAPI's OpenAPI 3.1 documents; the older
``swagger-ui-bundle`` ships Swagger UI 4, which cannot.
ReDoc is not bundled by that package, so ``/redoc`` is not served.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def install_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` from the package's bundled Swagger UI (create ``app`` with ``docs_url=None``)."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(ASSETS_URL, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} - Swagger UI"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
