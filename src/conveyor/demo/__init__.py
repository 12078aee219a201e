"""The end-to-end demo: a shop's weeks through the whole Conveyor loop."""

from conveyor.demo._receiver import ReceivedRequest, WebhookReceiver
from conveyor.demo._scenario import SIZES, Demo
from conveyor.demo._shoppers import TrafficSummary, simulate_shoppers
from conveyor.demo._summary import DemoSummary

__all__ = [
    "SIZES",
    "Demo",
    "DemoSummary",
    "ReceivedRequest",
    "TrafficSummary",
    "WebhookReceiver",
    "simulate_shoppers",
]
