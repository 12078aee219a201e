"""What the deploy commands return: typed results, turned into JSON only at the edge.

- :class:`DeployResult` — how ``deploy`` (direct, blue-green, canary, rolling) or ``rollback``
  ended in one environment: strategy, version, outcome, the canary's analyses or the rolling
  update's replicas (``steps``), the timings, the smoke test and the server's state after it.
- :class:`ABResult` — ``ab start``, ``ab status`` and ``ab conclude``: the experiment's plan,
  each arm's numbers, and the status (``started``, ``running``, ``concluded``) with the
  conclusion (``promoted`` or ``kept-control``) once decided.

A strategy builds its report step by step as it goes (the same dict an error carries when the
rollout fails half-way); :meth:`DeployResult.from_report` freezes it when the command succeeds.
``to_dict`` gives the ``--json`` object with its keys in the order the command has always
printed them (``keys``), so the command line's output does not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.deploy._abtest import Decision
    from conveyor.deploy._controller import ServerState

# DeployResult's fields that are not a key of the JSON object
_NOT_KEYS = frozenset({"keys", "extra"})


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class DeployResult:
    """How a deploy or a rollback ended in one environment."""

    environment: str
    outcome: str  # "ok" (switched), "unchanged" (already served)
    reason: str
    strategy: str | None = None  # direct, blue-green, canary, rolling; None for a rollback
    version: str | None = None  # the version deployed; a rollback's is the server's primary
    previous: str | None = None  # what served before
    steps: tuple[Mapping[str, Any], ...] | None = None  # canary analyses / rolling replicas, in order
    load_ms: float | None = None  # loading the candidate beside the served version
    switch_ms: float | None = None  # the atomic switch
    smoke: Mapping[str, Any] | None = None  # the candidate's smoke test on a side server
    recovered: Mapping[str, Any] | None = None  # what an interrupted earlier rollout left, now undone
    aliases: Mapping[str, Any] | str | None = None  # the registry aliases' update
    unreachable: tuple[str, ...] | None = None  # replicas that did not answer a rollback
    aborted: str | None = None  # the running rollout a rollback stopped
    stopped: bool | None = None  # whether that rollout exited in time
    server: Mapping[str, Any] | None = None  # the server's state afterwards (its GET /version body)
    extra: Mapping[str, Any] = field(default_factory=dict)  # a key this type does not know yet
    keys: tuple[str, ...] = field(default=(), repr=False, compare=False)  # the JSON object's key order

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> DeployResult:
        """Freeze the report a strategy built (``environment``, ``outcome``, ``reason`` at least)."""
        known = {f.name for f in fields(cls)} - _NOT_KEYS
        values: dict[str, Any] = {
            k: tuple(v) if k in ("steps", "unreachable") else v for k, v in report.items() if k in known
        }
        extra = {k: v for k, v in report.items() if k not in known}
        return cls(**values, extra=extra, keys=tuple(report))

    @property
    def succeeded(self) -> bool:
        return self.outcome in ("ok", "unchanged")

    def to_dict(self) -> dict[str, Any]:
        return {k: self.extra[k] if k in self.extra else _plain(getattr(self, k)) for k in self.keys}


@dataclass(frozen=True)
class ArmResult:
    """One arm of an A/B test so far: users (the unit), impressions, clicks, click-through rate."""

    users: int
    impressions: int
    clicks: int
    ctr: float
    design_effect: float | None
    required_users: int | None  # the plan's users for this arm (None: no plan yet)
    progress: float | None  # users / required_users

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ABResult:
    """An A/B test's state: ``started`` (the plan), ``running`` (interim numbers) or ``concluded``.

    ``plan`` is the experiment as stored (``envs/<env>/ab``: arms, salt, ratio, baseline, users
    needed). A running test's intervals, lift, split check and stopping rule are estimates, not
    a decision; ``decision`` is ``ab conclude``'s one test and verdict.
    """

    status: str  # "started", "running" or "concluded"
    plan: Mapping[str, Any]
    reason: str | None = None
    outcome: str | None = None  # "started"; "promoted" or "kept-control" once concluded
    serving: str | None = None  # concluded: the version that keeps all traffic
    unit: str | None = None  # "users"
    control: ArmResult | None = None
    variant: ArmResult | None = None
    required_per_arm: Mapping[str, int] | None = None
    always_valid_p: float | None = None  # running: the only p-value that may be read at every look
    note: str | None = None
    ctr_ci: Mapping[str, list[float] | None] | None = None  # running: each arm's CTR interval
    lift: Mapping[str, Any] | None = None  # running: the lift with its interval (None: too few users)
    sample_ratio: Mapping[str, Any] | None = None  # running: the split check
    stopping_rule: str | None = None
    decision: Decision | None = None  # concluded
    server: ServerState | None = None  # concluded: the server's state afterwards

    @property
    def arms(self) -> dict[str, ArmResult]:
        if self.control is None or self.variant is None:
            return {}
        return {"control": self.control, "variant": self.variant}

    def to_dict(self) -> dict[str, Any]:
        arms = {name: arm.to_dict() for name, arm in self.arms.items()}
        if self.status == "started":
            return {"outcome": self.outcome, "reason": self.reason, **self.plan}
        if self.status == "running":
            return {
                "experiment": self.plan,
                "arms": arms,
                "unit": self.unit,
                "required_per_arm": self.required_per_arm,
                "always_valid_p": self.always_valid_p,
                "decision": None,
                "note": self.note,
                "ctr_ci": self.ctr_ci,
                "lift": self.lift,
                "sample_ratio": self.sample_ratio,
                "stopping_rule": self.stopping_rule,
            }
        return {
            "outcome": self.outcome,
            "serving": self.serving,
            "reason": self.reason,
            "experiment": self.plan,
            "unit": self.unit,
            "arms": arms,
            "decision": None if self.decision is None else self.decision.to_dict(),
            "server": None if self.server is None else self.server.to_dict(),
        }


__all__ = ["ABResult", "ArmResult", "DeployResult"]
