"""Reports from Jinja2 templates: each package keeps its own in its ``templates/`` folder.

One environment per package (:class:`jinja2.PackageLoader`, so the templates
ship inside the wheel as package data). Autoescaping is on for ``.html``
templates — every value a report shows is escaped unless a template marks it
``|safe`` (the charts, which Matplotlib escaped already) — and off for ``.md``
ones, which GitHub renders as Markdown. ``StrictUndefined``: a name a template
uses and the caller did not pass is an error, not an empty cell.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _environment(package: str) -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_template(package: str, name: str, /, **context: Any) -> str:
    """``package``'s template ``templates/<name>`` rendered with ``context``."""
    return str(_environment(package).get_template(name).render(**context))
