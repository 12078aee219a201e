"""``conveyor ui``: a read-only operations page for one project (FastAPI + Jinja2, no CDN)."""

from conveyor.ui._app import create_ui_app

__all__ = ["create_ui_app"]
