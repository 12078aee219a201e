"""A deployment strategy: always smoke-test the candidate first (staging included), then switch at once."""

from __future__ import annotations

from typing import Any


class SmokeThenSwitch:
    """Like direct outside production, but never without a smoke test; says so in the result."""

    smoke_test = True

    def prepare(self, project: Any, steps: list[int] | None) -> list[int] | None:
        return None

    def roll_out(self, rollout: Any) -> dict[str, Any]:
        rollout.progress(f"switching to version {rollout.candidate} after its smoke test")
        report: dict[str, Any] = rollout.switch()
        report["switched_after"] = "smoke test"
        return report


SMOKE_THEN_SWITCH = SmokeThenSwitch()
