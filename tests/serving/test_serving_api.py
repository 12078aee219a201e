"""The public names of conveyor.serving are pinned: changing them is a deliberate act."""

import conveyor.serving


def test_serving_public_names_are_pinned() -> None:
    assert sorted(conveyor.serving.__all__) == sorted(
        [
            "FEEDBACK_SCHEMA",
            "PREDICTION_SCHEMA",
            "BatcherClosed",
            "MicroBatcher",
            "ModelLoader",
            "RegistryLoader",
            "RequestLog",
            "Routing",
            "RoutingConflict",
            "StaticLoader",
            "VersionNotFound",
            "create_app",
            "read_request_log",
            "run_server",
            "sticky_point",
            "uvicorn_config",
        ]
    )
    for name in conveyor.serving.__all__:
        assert hasattr(conveyor.serving, name)
