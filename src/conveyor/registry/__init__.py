"""Model versions, aliases and lineage — MLflow behind a small interface."""

from conveyor.registry._checksum import directory_sha256, verify_sha256
from conveyor.registry._dataset import DatasetRef, training_dataset
from conveyor.registry._lineage import Lineage
from conveyor.registry._tracking import ensure_experiment, tracking_client
from conveyor.registry._versions import (
    CANDIDATE,
    ModelVersion,
    delete_alias,
    get_version,
    get_version_by_alias,
    list_versions,
    load_verified,
    register_version,
    set_alias,
)

__all__ = [
    "CANDIDATE",
    "DatasetRef",
    "Lineage",
    "ModelVersion",
    "delete_alias",
    "directory_sha256",
    "ensure_experiment",
    "get_version",
    "get_version_by_alias",
    "list_versions",
    "load_verified",
    "register_version",
    "set_alias",
    "tracking_client",
    "training_dataset",
    "verify_sha256",
]
