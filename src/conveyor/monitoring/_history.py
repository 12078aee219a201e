"""The monitor's past runs: the ``report.json`` each run left under ``monitoring/<env>/<stamp>/``.

Read-only and tolerant: a report that cannot be read (a run killed while writing,
a file edited by hand) is named in :attr:`MonitorHistory.unreadable` and the
others are still returned. Only the last ``limit`` runs are read, so a year of
six-hourly runs costs the same as a week.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conveyor.monitoring._state import MONITORING_DIRNAME
from conveyor.project import Project

DEFAULT_RUNS = 120  # a month of six-hourly runs


@dataclass(frozen=True)
class MonitorHistory:
    """The reports of one environment's last runs, oldest first, and the files that failed."""

    environment: str
    reports: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "<path>: <why>"

    @property
    def latest(self) -> dict[str, Any] | None:
        return self.reports[-1] if self.reports else None


def monitor_history(project: Project, env: str, *, limit: int = DEFAULT_RUNS) -> MonitorHistory:
    """The last ``limit`` monitor reports of ``env`` in the default report folder, oldest first."""
    folder = project.state_dir / MONITORING_DIRNAME / env
    if not folder.is_dir():
        return MonitorHistory(env)
    # run folders are named by their UTC stamp (20261129T231500123456Z; older runs to the second):
    # the name order is the time order
    runs = sorted(p for p in folder.iterdir() if (p / "report.json").is_file())[-limit:]
    reports: list[dict[str, Any]] = []
    unreadable: list[str] = []
    for run in runs:
        path = run / "report.json"
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            unreadable.append(f"{path}: {exc}")
            continue
        if isinstance(report, dict):
            reports.append(report)
        else:
            unreadable.append(f"{path}: not a JSON object")
    return MonitorHistory(env, reports, unreadable)
