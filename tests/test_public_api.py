"""The public API is pinned: changing it is a deliberate act."""

import conveyor


def test_public_names_are_pinned():
    assert sorted(conveyor.__all__) == sorted(
        [
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
    )
    for name in conveyor.__all__:
        assert hasattr(conveyor, name)
