"""Deployment and A/B results are typed; their JSON is what the commands have always printed."""

from __future__ import annotations

import json
import math

from conveyor.deploy import ABResult, Arm, ArmResult, DeployResult, ServerState, decide

SERVER = {"kind": "recommender", "mode": "weighted", "primary": "3", "previous": "2", "versions": []}


def test_a_canary_report_freezes_with_its_steps_timings_and_key_order():
    # the order a canary builds its report in: reason before outcome, aliases after the server
    report = {
        "environment": "production",
        "strategy": "canary",
        "version": "3",
        "previous": "2",
        "smoke": {"ok": True, "checks": []},
        "steps": [{"step": 10, "verdict": "pass"}, {"step": 50, "verdict": "pass"}],
        "reason": "canary passed 2 analyses; promoted 3 over 2",
        "outcome": "ok",
        "switch_ms": 1.25,
        "server": SERVER,
        "aliases": {"outcome": "ok", "reason": "production → 3"},
        "promoted_by": "a key a later strategy adds",
    }
    result = DeployResult.from_report(report)
    assert (result.environment, result.strategy, result.version, result.previous) == (
        "production",
        "canary",
        "3",
        "2",
    )
    assert (result.outcome, result.succeeded, result.switch_ms, result.load_ms) == ("ok", True, 1.25, None)
    assert [s["step"] for s in result.steps or ()] == [10, 50]
    assert result.server is not None
    assert result.server["primary"] == "3"
    assert result.extra == {"promoted_by": "a key a later strategy adds"}
    assert json.dumps(result.to_dict()) == json.dumps(report)  # byte for byte, key order included


def test_a_rollback_result_has_no_strategy_and_lists_unreachable_replicas():
    report = {
        "environment": "production",
        "outcome": "ok",
        "reason": "switched back from 3 to 2",
        "switch_ms": 0.8,
        "unreachable": ["http://127.0.0.1:1"],
        "aliases": "updating in the background",
        "server": SERVER,
    }
    result = DeployResult.from_report(report)
    assert result.strategy is None
    assert result.unreachable == ("http://127.0.0.1:1",)
    assert result.to_dict() == report
    assert list(result.to_dict()) == list(report)


def _arm(name: str, users: int, clicks_per_user: int) -> Arm:
    return Arm.from_users(name, [10] * users, [clicks_per_user] * users)


def test_ab_results_per_status_print_the_keys_the_commands_print():
    plan = {"id": "ab-1", "control": "2", "variant": "3", "variant_ratio": 0.1, "required_per_arm": None}
    started = ABResult(status="started", plan=plan, outcome="started", reason="A/B test ab-1: 10 % of users")
    assert list(started.to_dict()) == ["outcome", "reason", *plan]
    control = ArmResult(900, 9000, 900, 0.1, 1.0, None, None)
    variant = ArmResult(100, 1000, 300, 0.3, 1.0, None, None)
    running = ABResult(
        status="running", plan=plan, unit="users", control=control, variant=variant, always_valid_p=0.01,
        note="interim", ctr_ci={"control": None, "variant": None}, lift=None,
        sample_ratio={"mismatch": False}, stopping_rule="fixed horizon",
    )  # fmt: skip
    body = running.to_dict()
    assert list(body) == [
        "experiment", "arms", "unit", "required_per_arm", "always_valid_p", "decision", "note",
        "ctr_ci", "lift", "sample_ratio", "stopping_rule",
    ]  # fmt: skip
    assert body["arms"]["variant"] == {
        "users": 100, "impressions": 1000, "clicks": 300, "ctr": 0.3, "design_effect": 1.0,
        "required_users": None, "progress": None,
    }  # fmt: skip
    assert body["decision"] is None
    decision = decide(_arm("control", 900, 1), _arm("variant", 100, 3), alpha=0.05, variant_ratio=0.1,
                      required_per_arm=None)  # fmt: skip
    server = ServerState.from_body({**SERVER, "env": "production"})
    concluded = ABResult(
        status="concluded", plan=plan, outcome="kept-control", serving="2", reason=decision.reason,
        unit="users", control=control, variant=variant, decision=decision, server=server,
    )  # fmt: skip
    body = concluded.to_dict()
    assert list(body) == ["outcome", "serving", "reason", "experiment", "unit", "arms", "decision", "server"]
    assert body["decision"] == decision.to_dict()
    assert body["server"] == server.to_dict()
    assert concluded.arms["control"].ctr == 0.1
    assert not math.isnan(body["arms"]["control"]["ctr"])
