"""Canary rollouts as the ledger tells them: the steps, each step's analysis, the outcome.

A canary writes, per step, a ``canary-step`` entry (the candidate's share is set)
and then a ``canary-analysis`` entry whose details are the step's record
(:func:`conveyor.deploy.step_record`: the verdict, each metric, both arms with their
intervals). The rollout ends with a ``deploy`` entry of strategy ``canary``
(``ok``: promoted, ``rolled-back``, ``aborted``) or an ``interrupted`` entry; a
rollout with no end yet is in progress (or was killed and not recovered yet).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conveyor.deploy import LedgerEntry

CANARY = "canary"
ENDS = {"deploy", "interrupted"}


@dataclass(frozen=True)
class CanaryStep:
    """One step: the candidate's share (percent), when it was set, and its analysis (if any yet)."""

    percent: str
    since: str
    analysis: dict[str, Any] | None = None


@dataclass
class CanaryRollout:
    """One canary of ``version``; ``outcome`` is None while it has no end in the ledger."""

    version: str
    started: str
    steps: list[CanaryStep] = field(default_factory=list)
    outcome: str | None = None
    reason: str = ""
    ended: str | None = None
    who: str = ""
    salt: str = ""  # the sticky assignment of this rollout's users, the same on every replica

    @property
    def stable(self) -> str | None:
        for step in self.steps:
            if step.analysis:
                return str(step.analysis.get("arms", {}).get("stable", {}).get("version") or "") or None
        return None


def _well_formed(details: Any) -> bool:
    """A step record the page can draw (a hand-edited or foreign line is left out, not a 500)."""
    if not isinstance(details, dict) or not isinstance(details.get("metrics"), list):
        return False
    arms = details.get("arms")
    return isinstance(arms, dict) and all(isinstance(arms.get(k), dict) for k in ("stable", "candidate"))


def _percent(entry: LedgerEntry) -> str:
    # the step entry's reason reads "<step> % to <version>"
    return entry.reason.split(" ", 1)[0] if entry.reason else "?"


def canary_rollouts(entries: Iterable[LedgerEntry]) -> list[CanaryRollout]:
    """The canary rollouts in ``entries`` (one environment's, oldest first), newest first."""
    done: list[CanaryRollout] = []
    open_: CanaryRollout | None = None
    for entry in entries:
        if entry.action == "canary-step":
            if open_ is None or open_.version != entry.version:
                if open_ is not None:  # a new canary began without an end to the last: keep it as is
                    done.append(open_)
                salt = entry.details.get("salt") if isinstance(entry.details, dict) else None
                open_ = CanaryRollout(str(entry.version), entry.time, who=entry.who, salt=str(salt or ""))
            open_.steps.append(CanaryStep(_percent(entry), entry.time))
        elif entry.action == "canary-analysis" and open_ is not None and open_.version == entry.version:
            if open_.steps and open_.steps[-1].analysis is None and _well_formed(entry.details):
                last = open_.steps[-1]
                open_.steps[-1] = CanaryStep(last.percent, last.since, dict(entry.details))
        elif (
            entry.action in ENDS
            and open_ is not None
            and entry.version == open_.version
            and entry.strategy == CANARY
        ):
            open_.outcome = "promoted" if entry.outcome == "ok" else entry.outcome
            open_.reason, open_.ended = entry.reason, entry.time
            done.append(open_)
            open_ = None
    if open_ is not None:
        done.append(open_)
    return done[::-1]
