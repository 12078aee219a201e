"""Reports: the stage results store, Markdown / HTML rendering, the job summary.

``distribution_svg`` and ``trend_svg`` are :mod:`conveyor.rendering`'s charts, re-exported
here for the operations page.
"""

from conveyor.rendering import distribution_svg, trend_svg
from conveyor.reports._render import headline, render_html, render_markdown
from conveyor.reports._store import (
    PIPELINE_RUN_VAR,
    current_pipeline_run,
    latest_pipeline_run,
    load_history,
    load_stage_results,
    record_stage_result,
    results_dir,
)
from conveyor.reports._summary import STEP_SUMMARY_VAR, append_step_summary

__all__ = [
    "PIPELINE_RUN_VAR",
    "STEP_SUMMARY_VAR",
    "append_step_summary",
    "current_pipeline_run",
    "distribution_svg",
    "headline",
    "latest_pipeline_run",
    "load_history",
    "load_stage_results",
    "record_stage_result",
    "render_html",
    "render_markdown",
    "results_dir",
    "trend_svg",
]
