"""Conveyor's exception tree and the exit-code contract.

Every error a caller can act on is a :class:`ConveyorError`. The tree follows
the decision a caller makes, and each branch carries the process exit code
the command line maps it to (the mapping lives in one place:
``conveyor.cli._app.main``)::

    ConveyorError                      exit 2 unless a branch says otherwise
    ├── UsageError                     exit 2  bad usage: the caller must change the call
    │   ├── ConfigError                        conveyor.yaml unreadable or invalid (file, key)
    │   ├── ExtensionError                     a configured plugin part is missing or broken
    │   ├── ProjectNotFoundError               no conveyor.yaml here or above
    │   ├── NotBuiltYetError                   a command that exists but is not built yet
    │   ├── StateStoreError                    the state store's URI is wrong, or it cannot be reached
    │   └── NoRolloutRunning                   promote or abort, and no rollout runs (or was killed) there
    ├── InputError                     exit 2  unreadable input: a data file, a schema, a profile
    ├── CheckFailed                    exit 1  a check ran and said no
    │   ├── ValidationFailed                   data broke its schema
    │   ├── DriftDetected                      the dataset drifted
    │   ├── GateFailed                         a quality gate failed
    │   ├── SmokeTestFailed                    an endpoint failed its smoke test
    │   ├── CanaryFailed                       canary analysis failed; candidate rolled back
    │   └── DegradationFound                   monitoring found live drift or degradation
    └── OperationError                 exit 1  the work could not be completed
        ├── LockBusy                           another live process holds a state lock
        │   └── DeployConflict                 another deploy holds the environment
        ├── StateConflict                      a compare-and-set on a state document lost
        ├── RolloutAborted                     an operator's rollback stopped a running rollout
        ├── IntegrityError                     an artifact's checksum does not match
        └── ServiceError                       a server, registry or receiver failed

Errors carry their context as attributes and render a single line with
``str(err)``; foreign exceptions are converted at the boundary with
``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


class ConveyorError(Exception):
    """Root of every error Conveyor raises on purpose."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: type, message, exit code and context."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "exit_code": self.exit_code,
            **{k: v for k, v in self.context.items() if _jsonable(v)},
        }


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


# -- usage: exit 2 -----------------------------------------------------------
class UsageError(ConveyorError):
    """The call itself is wrong: an option, an argument, the configuration."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """``conveyor.yaml`` is missing, unreadable or invalid.

    ``file`` is the path of the file, ``key`` the dotted key path (empty when
    the whole file is at fault), ``expected`` what would have been accepted.
    """

    def __init__(self, file: str, key: str, problem: str) -> None:
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(where + problem, file=file, key=key, problem=problem)
        self.file = file
        self.key = key
        self.problem = problem


class ExtensionError(UsageError):
    """A part named in the configuration (an alert channel kind, …) is not installed, cannot be
    imported, or is not the kind of object its extension point needs (conveyor.extensions)."""


class ProjectNotFoundError(UsageError):
    """No ``conveyor.yaml`` in the given directory or any parent."""


class NotBuiltYetError(UsageError):
    """The command exists in the contract but is not built yet."""


class StateStoreError(UsageError):
    """The state store cannot be used: a wrong URI, an unreachable server, a refused login.

    The message names the store by host, port and database, never by its password.
    """


class NoRolloutRunning(UsageError):
    """A canary promote or a rollout abort found nothing to act on in the environment.

    No rollout runs there, and none was killed half-way; ``conveyor ui`` answers 409.
    """


# -- unreadable input: exit 2 ----------------------------------------------------
class InputError(ConveyorError):
    """An input file (data, schema, profile) cannot be read or understood."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, path: str | None = None, **context: Any) -> None:
        super().__init__(message, path=path, **context)
        self.path = path


# -- a check said no: exit 1 -------------------------------------------------------
class CheckFailed(ConveyorError):
    """A check ran to completion and failed. ``report`` holds its findings."""

    exit_code = EXIT_CHECK_FAILED

    def __init__(self, message: str, *, report: dict[str, Any] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.report = report or {}


class ValidationFailed(CheckFailed):
    """Data broke one or more rules of its schema."""


class DriftDetected(CheckFailed):
    """The share of drifted columns reached the dataset threshold."""


class GateFailed(CheckFailed):
    """At least one quality gate failed."""


class SmokeTestFailed(CheckFailed):
    """An endpoint failed its smoke test."""


class CanaryFailed(CheckFailed):
    """The canary analysis failed and the candidate was put back to 0 %."""


class DegradationFound(CheckFailed):
    """Monitoring found live drift, a metric drop or an SLO breach."""


# -- the work could not be done: exit 1 ----------------------------------------------
class OperationError(ConveyorError):
    """An operation could not be completed (nothing was left half-done)."""

    exit_code = EXIT_CHECK_FAILED


class LockBusy(OperationError):
    """Another live process holds a lock of the state store; ``record`` is what it says it does."""

    def __init__(self, message: str, *, record: dict[str, Any] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.record = record


class DeployConflict(LockBusy):
    """Another deployment holds the environment's lock."""


class StateConflict(OperationError):
    """A document of the state store changed since it was read (compare-and-set lost)."""


class RolloutAborted(OperationError):
    """A running rollout was stopped by an operator (``conveyor rollback``); traffic went back."""


class IntegrityError(OperationError):
    """An artifact's checksum does not match its registered value."""


class ServiceError(OperationError):
    """A server, the registry or a remote receiver failed."""


__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CanaryFailed",
    "CheckFailed",
    "ConfigError",
    "ConveyorError",
    "DegradationFound",
    "DeployConflict",
    "DriftDetected",
    "ExtensionError",
    "GateFailed",
    "InputError",
    "IntegrityError",
    "LockBusy",
    "NoRolloutRunning",
    "NotBuiltYetError",
    "OperationError",
    "ProjectNotFoundError",
    "RolloutAborted",
    "ServiceError",
    "SmokeTestFailed",
    "StateConflict",
    "StateStoreError",
    "UsageError",
    "ValidationFailed",
]
