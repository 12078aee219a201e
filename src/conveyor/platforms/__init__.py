"""Files for the platforms teams run, generated from ``conveyor.yaml``: a Dockerfile for the
serving image, Kubernetes manifests, a systemd unit, and the Argo Rollouts / Flagger canary hook."""

from conveyor.platforms._generate import (
    Generated,
    GeneratedFile,
    GenerateOptions,
    PlatformTarget,
    default_out,
    generate,
    write_generated,
)
from conveyor.platforms._target import ServedEnvironment, served_environment

__all__ = [
    "GenerateOptions",
    "Generated",
    "GeneratedFile",
    "PlatformTarget",
    "ServedEnvironment",
    "default_out",
    "generate",
    "served_environment",
    "write_generated",
]
