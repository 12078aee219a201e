"""Conveyor: continuous integration, delivery and monitoring for ML models.

The public API is re-exported here; implementation modules are private to
their subpackages. ``tests/test_public_api.py`` pins ``__all__``.
"""

from conveyor.config import Settings, load_settings
from conveyor.errors import (
    CheckFailed,
    ConfigError,
    ConveyorError,
    InputError,
    OperationError,
    UsageError,
)
from conveyor.project import Project

__version__ = "0.1.0"

__all__ = [
    "CheckFailed",
    "ConfigError",
    "ConveyorError",
    "InputError",
    "OperationError",
    "Project",
    "Settings",
    "UsageError",
    "__version__",
    "load_settings",
]
