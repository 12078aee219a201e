"""The stage graph, the local runner and workflow generation."""

from conveyor.pipeline._stages import PIPELINE, Stage, stage_names

__all__ = ["PIPELINE", "Stage", "stage_names"]
