"""Environments and their supervised processes, strategies, ledger, smoke tests, A/B."""

from conveyor.deploy._abtest import (
    Arm,
    Decision,
    ProportionTest,
    SampleRatioTest,
    Verdict,
    always_valid_p,
    decide,
    sample_ratio_test,
    sample_size_per_arm,
    two_proportion_test,
)
from conveyor.deploy._aliases import spawn_alias_sync, sync_aliases
from conveyor.deploy._canary import ArmSample, CanaryResult, CanaryVerdict, MetricResult, analyse
from conveyor.deploy._controller import ServerClient, ServerState
from conveyor.deploy._drill import FaultyRecommender
from conveyor.deploy._experiment import ab_conclude, ab_start, ab_status
from conveyor.deploy._ledger import Ledger, LedgerEntry, Serving, current_actor, serving_versions
from conveyor.deploy._lock import EnvironmentLock, LockHolder
from conveyor.deploy._processes import ProcessRecord, read_record
from conveyor.deploy._rollback import rollback
from conveyor.deploy._smoke import SmokeCheck, SmokeReport, smoke_test
from conveyor.deploy._status import status
from conveyor.deploy._strategies import Environment, deploy
from conveyor.deploy._supervisor import (
    EnvironmentProcess,
    ServerRecord,
    SideServer,
    environment_settings,
    free_port,
    pid_alive,
)
from conveyor.deploy._watchdog import watch

__all__ = [
    "Arm",
    "ArmSample",
    "CanaryResult",
    "CanaryVerdict",
    "Decision",
    "Environment",
    "EnvironmentLock",
    "EnvironmentProcess",
    "FaultyRecommender",
    "Ledger",
    "LedgerEntry",
    "LockHolder",
    "MetricResult",
    "ProcessRecord",
    "ProportionTest",
    "SampleRatioTest",
    "ServerClient",
    "ServerRecord",
    "ServerState",
    "Serving",
    "SideServer",
    "SmokeCheck",
    "SmokeReport",
    "Verdict",
    "ab_conclude",
    "ab_start",
    "ab_status",
    "always_valid_p",
    "analyse",
    "current_actor",
    "decide",
    "deploy",
    "environment_settings",
    "free_port",
    "pid_alive",
    "read_record",
    "rollback",
    "sample_ratio_test",
    "sample_size_per_arm",
    "serving_versions",
    "smoke_test",
    "spawn_alias_sync",
    "status",
    "sync_aliases",
    "two_proportion_test",
    "watch",
]
