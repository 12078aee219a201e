"""The GitHub Actions job summary: every stage appends its part.

GitHub renders the Markdown appended to the file named by
``GITHUB_STEP_SUMMARY`` on the run's page. Outside Actions the variable is
unset and nothing happens.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.config import env_flag
from conveyor.errors import OperationError

STEP_SUMMARY_VAR = "GITHUB_STEP_SUMMARY"


def append_step_summary(markdown: str) -> bool:
    """Append ``markdown`` to the job summary; False when not running in GitHub Actions."""
    target = env_flag(STEP_SUMMARY_VAR)
    if not target:
        return False
    try:
        with Path(target).open("a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip("\n") + "\n\n")
    except OSError as exc:
        raise OperationError(f"{STEP_SUMMARY_VAR}={target}: cannot append: {exc.strerror}") from exc
    return True
