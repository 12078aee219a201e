"""Rendering: the one chart renderer (Matplotlib → inline SVG) and the Jinja2 templates of the reports.

Every chart Conveyor draws — the pipeline report, the monitor report, the drift
report, the operations page — comes from :mod:`._charts`; every report page and
Markdown text comes from a package's ``templates/`` folder through
:func:`render_template`. The package sits low in the layers (it imports no other
package of Conveyor), so ``data``, ``monitoring`` and ``reports`` can all use it.
"""

from conveyor.rendering._charts import bars_svg, distribution_svg, interval_svg, trend_svg
from conveyor.rendering._templates import render_template

__all__ = ["bars_svg", "distribution_svg", "interval_svg", "render_template", "trend_svg"]
