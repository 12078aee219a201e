"""Canary rollouts read back from ledger entries: steps, analyses and outcome (known sequences)."""

from __future__ import annotations

from conveyor.deploy import LedgerEntry
from conveyor.ui._rollouts import canary_rollouts


def _step(version: str, pct: int, t: str) -> LedgerEntry:
    return LedgerEntry("production", "canary-step", "ok", version, "canary", f"{pct} % to {version}", time=t)


def _analysis(version: str, pct: int, verdict: str) -> LedgerEntry:
    return LedgerEntry("production", "canary-analysis", verdict, version, "canary", "r",
                       details={"step": pct, "verdict": verdict, "metrics": [],
                                "arms": {"stable": {}, "candidate": {}}})  # fmt: skip


def test_rollouts_are_grouped_newest_first_with_their_outcome() -> None:
    entries = [
        LedgerEntry("production", "deploy", "ok", "1", "direct", time="t0"),
        _step("2", 10, "t1"), _analysis("2", 10, "pass"), _step("2", 50, "t2"), _analysis("2", 50, "pass"),
        LedgerEntry("production", "deploy", "ok", "2", "canary", "promoted", time="t3"),
        _step("3", 10, "t4"), _analysis("3", 10, "fail"),
        LedgerEntry("production", "deploy", "rolled-back", "3", "canary", "failed", time="t5"),
        _step("4", 10, "t6"),
    ]  # fmt: skip
    found = canary_rollouts(entries)
    assert [(r.version, r.outcome) for r in found] == [("4", None), ("3", "rolled-back"), ("2", "promoted")]
    assert [s.percent for s in found[2].steps] == ["10", "50"]
    assert [s.analysis["verdict"] for s in found[2].steps if s.analysis] == ["pass", "pass"]
    assert found[1].steps[0].analysis["verdict"] == "fail"
    assert found[0].steps[0].analysis is None  # in progress: the step has no verdict yet
    assert found[1].ended == "t5"


def test_a_malformed_analysis_line_is_left_out() -> None:
    broken = LedgerEntry("production", "canary-analysis", "pass", "2", "canary", "r", details={"arms": "x"})
    found = canary_rollouts([_step("2", 10, "t1"), broken])
    assert found[0].steps[0].analysis is None
