"""Environments and their supervised processes, strategies, ledger, smoke tests, A/B.

The names load lazily (PEP 562): ``conveyor rollback`` must switch traffic
within a second of starting, and importing the statistics behind the canary
and the A/B test (scipy) alone costs more than that on a busy machine. Each
name imports its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.deploy._abtest import (
        Arm,
        Decision,
        ProportionTest,
        RatioTest,
        SampleRatioTest,
        Verdict,
        always_valid_p,
        decide,
        plan_from_baseline,
        ratio_test,
        sample_ratio_test,
        sample_size_per_arm,
        two_proportion_test,
    )
    from conveyor.deploy._aliases import spawn_alias_sync, sync_aliases
    from conveyor.deploy._canary import (
        ArmSample,
        CanaryResult,
        CanaryVerdict,
        MetricResult,
        UserCounts,
        analyse,
        arm_summary,
        step_record,
    )
    from conveyor.deploy._canary_control import abort_rollout, promote_canary
    from conveyor.deploy._controller import ServerClient, ServerState
    from conveyor.deploy._experiment import ab_conclude, ab_start, ab_status
    from conveyor.deploy._fleet import FleetClient
    from conveyor.deploy._ledger import (
        Ledger,
        LedgerEntry,
        Serving,
        acting_as,
        current_actor,
        deployed_versions,
        operator_reason,
        serving_versions,
    )
    from conveyor.deploy._lifecycle import (
        environment_log,
        restart_environment,
        start_environment,
        stop_environment,
    )
    from conveyor.deploy._lock import EnvironmentLock, LockHolder
    from conveyor.deploy._observations import canary_samples, served_versions
    from conveyor.deploy._processes import ProcessRecord, read_record
    from conveyor.deploy._results import ABResult, ArmResult, DeployResult
    from conveyor.deploy._rollback import rollback
    from conveyor.deploy._smoke import SmokeCheck, SmokeReport, smoke_test
    from conveyor.deploy._status import status
    from conveyor.deploy._strategies import Environment, deploy
    from conveyor.deploy._strategy_types import DeployStrategy, Rollout, deploy_strategy
    from conveyor.deploy._supervisor import (
        EnvironmentProcess,
        ServerRecord,
        SideServer,
        environment_settings,
        free_port,
        pid_alive,
    )
    from conveyor.deploy._watchdog import watch

_EXPORTS = {
    "ABResult": "_results",
    "Arm": "_abtest",
    "ArmResult": "_results",
    "ArmSample": "_canary",
    "UserCounts": "_canary",
    "CanaryResult": "_canary",
    "CanaryVerdict": "_canary",
    "Decision": "_abtest",
    "DeployResult": "_results",
    "DeployStrategy": "_strategy_types",
    "Rollout": "_strategy_types",
    "deploy_strategy": "_strategy_types",
    "Environment": "_strategies",
    "EnvironmentLock": "_lock",
    "EnvironmentProcess": "_supervisor",
    "FleetClient": "_fleet",
    "environment_log": "_lifecycle",
    "restart_environment": "_lifecycle",
    "start_environment": "_lifecycle",
    "stop_environment": "_lifecycle",
    "Ledger": "_ledger",
    "LedgerEntry": "_ledger",
    "LockHolder": "_lock",
    "MetricResult": "_canary",
    "ProcessRecord": "_processes",
    "ProportionTest": "_abtest",
    "RatioTest": "_abtest",
    "plan_from_baseline": "_abtest",
    "ratio_test": "_abtest",
    "SampleRatioTest": "_abtest",
    "ServerClient": "_controller",
    "ServerRecord": "_supervisor",
    "ServerState": "_controller",
    "Serving": "_ledger",
    "SideServer": "_supervisor",
    "SmokeCheck": "_smoke",
    "SmokeReport": "_smoke",
    "Verdict": "_abtest",
    "ab_conclude": "_experiment",
    "ab_start": "_experiment",
    "ab_status": "_experiment",
    "abort_rollout": "_canary_control",
    "acting_as": "_ledger",
    "always_valid_p": "_abtest",
    "analyse": "_canary",
    "arm_summary": "_canary",
    "canary_samples": "_observations",
    "current_actor": "_ledger",
    "decide": "_abtest",
    "deploy": "_strategies",
    "deployed_versions": "_ledger",
    "environment_settings": "_supervisor",
    "free_port": "_supervisor",
    "operator_reason": "_ledger",
    "pid_alive": "_supervisor",
    "promote_canary": "_canary_control",
    "read_record": "_processes",
    "rollback": "_rollback",
    "sample_ratio_test": "_abtest",
    "sample_size_per_arm": "_abtest",
    "served_versions": "_observations",
    "serving_versions": "_ledger",
    "smoke_test": "_smoke",
    "spawn_alias_sync": "_aliases",
    "step_record": "_canary",
    "status": "_status",
    "sync_aliases": "_aliases",
    "two_proportion_test": "_abtest",
    "watch": "_watchdog",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"conveyor.deploy.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ABResult",
    "Arm",
    "ArmResult",
    "ArmSample",
    "CanaryResult",
    "CanaryVerdict",
    "Decision",
    "DeployResult",
    "DeployStrategy",
    "Environment",
    "EnvironmentLock",
    "EnvironmentProcess",
    "FleetClient",
    "Ledger",
    "LedgerEntry",
    "LockHolder",
    "MetricResult",
    "ProcessRecord",
    "ProportionTest",
    "RatioTest",
    "Rollout",
    "SampleRatioTest",
    "ServerClient",
    "ServerRecord",
    "ServerState",
    "Serving",
    "SideServer",
    "SmokeCheck",
    "SmokeReport",
    "UserCounts",
    "Verdict",
    "ab_conclude",
    "ab_start",
    "ab_status",
    "abort_rollout",
    "acting_as",
    "always_valid_p",
    "analyse",
    "arm_summary",
    "canary_samples",
    "current_actor",
    "decide",
    "deploy",
    "deploy_strategy",
    "deployed_versions",
    "environment_log",
    "environment_settings",
    "free_port",
    "operator_reason",
    "pid_alive",
    "plan_from_baseline",
    "promote_canary",
    "ratio_test",
    "read_record",
    "restart_environment",
    "rollback",
    "sample_ratio_test",
    "sample_size_per_arm",
    "served_versions",
    "serving_versions",
    "smoke_test",
    "spawn_alias_sync",
    "start_environment",
    "status",
    "step_record",
    "stop_environment",
    "sync_aliases",
    "two_proportion_test",
    "watch",
]
