"""Monitoring: scheduled checks of live drift and performance, alerts, retraining triggers."""

from conveyor.monitoring._alerts import DeliveryResult, send_alert, send_test_alert
from conveyor.monitoring._channels import (
    DISCORD,
    SLACK,
    WEBHOOK,
    Alert,
    AlertChannelType,
    PayloadChannel,
    build_payload,
)
from conveyor.monitoring._checks import CheckResult
from conveyor.monitoring._dispatch import (
    GITHUB_API_VERSION,
    RETRAIN_INPUTS,
    DispatchResult,
    dispatch_path,
    dispatch_workflow,
)
from conveyor.monitoring._history import MonitorHistory, monitor_history
from conveyor.monitoring._monitor import MonitorResult, parse_duration, run_monitor
from conveyor.monitoring._outbox import outbox_size
from conveyor.monitoring._policy import (
    PolicySignals,
    RetrainDecision,
    apply_policy,
    local_commands,
    retrain_reasons,
)
from conveyor.monitoring._readiness import environment_problems, replica_urls

__all__ = [
    "DISCORD",
    "GITHUB_API_VERSION",
    "RETRAIN_INPUTS",
    "SLACK",
    "WEBHOOK",
    "Alert",
    "AlertChannelType",
    "CheckResult",
    "DeliveryResult",
    "DispatchResult",
    "MonitorHistory",
    "MonitorResult",
    "PayloadChannel",
    "PolicySignals",
    "RetrainDecision",
    "apply_policy",
    "build_payload",
    "dispatch_path",
    "dispatch_workflow",
    "environment_problems",
    "local_commands",
    "monitor_history",
    "outbox_size",
    "parse_duration",
    "replica_urls",
    "retrain_reasons",
    "run_monitor",
    "send_alert",
    "send_test_alert",
]
