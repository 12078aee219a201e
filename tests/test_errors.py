"""The error tree and the exit-code contract (0 ok, 1 a check failed, 2 bad usage/input)."""

from __future__ import annotations

import pytest

import conveyor.errors as errors
from conveyor.cli._app import _report_error

EXPECTED_EXIT = {
    errors.UsageError: 2,
    errors.ConfigError: 2,
    errors.ProjectNotFoundError: 2,
    errors.ExtensionError: 2,
    errors.NotBuiltYetError: 2,
    errors.StateStoreError: 2,
    errors.NoRolloutRunning: 2,
    errors.InputError: 2,
    errors.CheckFailed: 1,
    errors.ValidationFailed: 1,
    errors.DriftDetected: 1,
    errors.GateFailed: 1,
    errors.SmokeTestFailed: 1,
    errors.CanaryFailed: 1,
    errors.DegradationFound: 1,
    errors.OperationError: 1,
    errors.LockBusy: 1,
    errors.DeployConflict: 1,
    errors.StateConflict: 1,
    errors.RolloutAborted: 1,
    errors.IntegrityError: 1,
    errors.ServiceError: 1,
}


def _make(cls):
    if cls is errors.ConfigError:
        return cls("conveyor.yaml", "model.type", "bad")
    return cls("something happened")


@pytest.mark.parametrize(("cls", "code"), EXPECTED_EXIT.items())
def test_each_branch_maps_to_its_exit_code(cls, code, capsys):
    exc = _make(cls)
    assert isinstance(exc, errors.ConveyorError)
    assert _report_error(exc) == code
    assert cls.__name__ in capsys.readouterr().err


def test_every_error_class_is_drawn_in_the_module_docstring():
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        if name[0].isupper() and not name.startswith("EXIT"):
            assert name in doc, f"{name} missing from the tree in errors.py's docstring"


def test_every_public_error_has_a_known_exit_code():
    classes = {getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)}
    assert classes - {errors.ConveyorError} == set(EXPECTED_EXIT)


def test_errors_carry_context_and_render_one_line():
    exc = errors.ConfigError("conveyor.yaml", "deploy.ab.variant_ratio", "must be < 1")
    assert str(exc) == "conveyor.yaml: deploy.ab.variant_ratio: must be < 1"
    assert exc.to_dict()["key"] == "deploy.ab.variant_ratio"
    failed = errors.GateFailed("2 gates failed", report={"gates": []})
    assert failed.report == {"gates": []}


def test_not_built_command_exits_2_and_says_so(cli):
    from conveyor.cli._options import not_built

    with pytest.raises(errors.NotBuiltYetError, match="not built yet"):
        not_built("example", "Some issue")
