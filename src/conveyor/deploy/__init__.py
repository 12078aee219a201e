"""Environments and their supervised processes, strategies, ledger, smoke tests, A/B."""

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
from conveyor.deploy._canary import ArmSample, CanaryResult, CanaryVerdict, MetricResult, analyse
from conveyor.deploy._controller import ServerClient, ServerState
from conveyor.deploy._drill import FaultyRecommender
from conveyor.deploy._experiment import ab_conclude, ab_start, ab_status
from conveyor.deploy._ledger import Ledger, LedgerEntry, current_actor
from conveyor.deploy._lock import EnvironmentLock, LockHolder
from conveyor.deploy._smoke import SmokeCheck, SmokeReport, smoke_test
from conveyor.deploy._status import status
from conveyor.deploy._strategies import Environment, deploy, rollback
from conveyor.deploy._supervisor import (
    EnvironmentProcess,
    ServerRecord,
    SideServer,
    environment_settings,
    free_port,
    pid_alive,
)

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
    "ProportionTest",
    "RatioTest",
    "SampleRatioTest",
    "ServerClient",
    "ServerRecord",
    "ServerState",
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
    "plan_from_baseline",
    "ratio_test",
    "rollback",
    "sample_ratio_test",
    "sample_size_per_arm",
    "smoke_test",
    "status",
    "two_proportion_test",
]
