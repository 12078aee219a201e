"""Model versions, aliases and lineage — MLflow behind a small interface."""

from conveyor.registry._tracking import ensure_experiment, tracking_client

__all__ = ["ensure_experiment", "tracking_client"]
