"""The checks that make the demo a test of its story.

Each check looks at what a phase must have caused, from the outside — the
monitor's JSON answer, the local webhook receiver's own log, the registry and
its lineage, the production server's ``/version`` — and records one demo step
that passes or fails. :data:`STORY` names the checks a recommender run must
reach; a run that stops before one of them is not ok either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.demo._receiver import WebhookReceiver
from conveyor.demo._steps import StepResult, StepRunner

# The checks of the recommender story (phase/step); a run that does not reach one is not ok.
STORY = (
    "week 3/drift detected",
    "week 3/alert received",
    "week 3/retrained on week 3",
    "week 3/canary promoted it",
    "week 3/rollback drill held",
    "broken feed/feed stopped",
    "broken feed/production still serves",
)


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes, computed here rather than by the fingerprint code it checks."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def alert_title(body: Any) -> str:
    """The first line of a received alert (Slack/Discord/webhook bodies)."""
    if isinstance(body, dict):
        for key in ("title", "text", "content"):
            if isinstance(body.get(key), str):
                return str(body[key]).splitlines()[0][:120]
    return str(body)[:120]


@dataclass
class Story:
    """The week-3 checks of one run; each records its step and says whether it held."""

    steps: StepRunner
    project: Path
    facts: dict[str, Any]

    def newest_version(self) -> str | None:
        """The newest registered version, read from the registry (``None`` before the first)."""
        from conveyor.project import Project
        from conveyor.registry import list_versions

        versions = list_versions(Project.load(self.project))
        return versions[0].version if versions else None

    def drift_detected(self, monitor: StepResult) -> bool:
        """``monitor`` exited 1 with a failed drift check and ran the retraining."""
        checks = monitor.payload.get("checks") or []
        failed = [str(c.get("name")) for c in checks if isinstance(c, dict) and c.get("status") == "fail"]
        retrain = monitor.payload.get("retrain") or {}
        status = retrain.get("status") if isinstance(retrain, dict) else None
        drift = [name for name in failed if "drift" in name]
        return self.steps.record(
            "week 3",
            "drift detected",
            "monitor: exit 1, a drift check failed, retraining ran",
            0.0,
            f"monitor exited {monitor.exit_code}; failed checks: {', '.join(failed) or 'none'}; "
            f"retraining {status}",
            monitor.exit_code == 1 and bool(drift) and status == "ran",
        ).as_expected

    def alert_received(self, receiver: WebhookReceiver, before: int) -> bool:
        """The local receiver's own log holds the week-3 alert."""
        new = receiver.received[before:]
        self.facts["week3_alerts"] = len(new)
        titles = "; ".join(alert_title(r.body) for r in new[:2])
        return self.steps.record(
            "week 3",
            "alert received",
            f"the receiver at {receiver.url} logs each POST",
            0.0,
            f"the local webhook receiver logged {len(new)} alert(s) in week 3 "
            f"({len(receiver.received)} in all)" + (f": {titles}" if titles else ""),
            len(new) >= 1,
        ).as_expected

    def retrained(self, before: str | None, week3_md5: str) -> str | None:
        """Retraining registered a NEW version whose run trained on the week-3 file; its number."""
        from conveyor.project import Project
        from conveyor.registry import list_versions

        versions = list_versions(Project.load(self.project))
        newest = versions[0] if versions else None
        version = newest.version if newest else None
        fingerprint = newest.lineage.data_fingerprint if newest else ""
        is_new = newest is not None and (before is None or int(newest.version) > int(before))
        on_week3 = fingerprint == f"md5:{week3_md5}"
        self.facts.update(
            {
                "version_before_week3": before,
                "retrained_version": version,
                "retrained_data_fingerprint": fingerprint,
                "week3_data_md5": week3_md5,
            }
        )
        held = self.steps.record(
            "week 3",
            "retrained on week 3",
            "registry: the newest version and its lineage",
            0.0,
            f"version {version} (newest before: {before}) trained on data {fingerprint or '?'}; "
            f"the week-3 file is md5:{week3_md5}"
            + ("" if is_new else "; NOT a new version")
            + ("" if on_week3 else "; NOT the week-3 data"),
            is_new and on_week3,
        ).as_expected
        return version if held else None

    def promoted(self, canary: StepResult, version: str, serving: str | None) -> bool:
        """The canary promoted exactly the retrained version and production serves it."""
        deployed = canary.payload.get("version")
        self.facts["canary_version"] = deployed
        self.facts["serving_after_canary"] = serving
        return self.steps.record(
            "week 3",
            "canary promoted it",
            "deploy --json version, GET /version",
            0.0,
            f"canary deployed {deployed}, production serves {serving}; the retrained version is {version}",
            canary.exit_code == 0 and str(deployed) == version and serving == version,
        ).as_expected

    def rolled_back(
        self,
        back: StepResult,
        forward: StepResult,
        previous: str,
        retrained: str,
        during: str | None,
        after: str | None,
    ) -> bool:
        """``conveyor rollback`` served the version the canary replaced, a second one the retrained again."""
        self.facts["rollback_drill"] = {"during": during, "after": after, "previous": previous}
        return self.steps.record(
            "week 3",
            "rollback drill held",
            "rollback twice, GET /version after each",
            0.0,
            f"rollback: production served {during} (the canary replaced {previous}); "
            f"roll forward: {after} (the retrained version is {retrained})",
            back.exit_code == 0 and forward.exit_code == 0 and during == previous and after == retrained,
        ).as_expected
