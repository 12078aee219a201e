"""The public names of conveyor.serving are pinned: changing them is a deliberate act."""

import conveyor.serving


def test_serving_public_names_are_pinned() -> None:
    assert sorted(conveyor.serving.__all__) == sorted(
        [
            "CLIENT_ERROR",
            "FEEDBACK",
            "FEEDBACK_SCHEMA",
            "MODEL_ERROR",
            "OK",
            "OUTCOMES",
            "PREDICTIONS",
            "PREDICTION_SCHEMA",
            "SERVER_ERROR",
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
            "scan_request_log",
            "run_server",
            "sticky_point",
            "uvicorn_config",
        ]
    )
    for name in conveyor.serving.__all__:
        assert hasattr(conveyor.serving, name)


def test_the_request_log_readers_import_without_the_web_framework() -> None:
    """The monitor and the canary analysis read the log; they must not pay for FastAPI."""
    import subprocess
    import sys

    code = "import sys, conveyor.serving; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
