"""Extension points: the kinds of part a separate package can add to Conveyor.

Each kind is an entry-point group (the packaging standard: ``[project.entry-points."GROUP"]`` in a
plugin's ``pyproject.toml``). Conveyor declares its own built-in parts in the same groups, so the
built-ins and a plugin's parts are found, listed and loaded the same way — there is no second
table to keep in step. Names are read from the installed packages' metadata without importing
anything (the configuration validates ``kind: pager`` and the JSON Schema lists the names); the
object behind a name is imported only when it is used. docs/extending.md has a worked example.

``importlib.metadata`` is the standard library's reader of that metadata; what is ours here is
only the one-line errors and the list of groups.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from conveyor.errors import ExtensionError

__all__ = [
    "ALERT_CHANNELS",
    "DEPLOYMENT_STRATEGIES",
    "DRIFT_TESTS",
    "MODEL_TYPES",
    "ExtensionPoint",
    "require_extra",
]


@dataclass(frozen=True)
class ExtensionPoint:
    """One kind of part: ``what`` names it in messages, ``group`` is its entry-point group."""

    what: str
    group: str
    # the built-ins' names in the order Conveyor has always listed them (choices in --help and
    # messages, the default --matrix order); entry points come sorted by name, so it is kept here
    builtin_order: tuple[str, ...] = ()

    def _entries(self) -> dict[str, EntryPoint]:
        found: dict[str, EntryPoint] = {}
        for entry in entry_points(group=self.group):
            found.setdefault(entry.name, entry)  # the first on sys.path wins, as for imports
        return found

    def names(self) -> tuple[str, ...]:
        """Every name installed for this kind: the built-ins in their order, then plugins' sorted."""
        found = self._entries()
        first = [n for n in self.builtin_order if n in found]
        return (*first, *sorted(set(found) - set(first)))

    def packages(self) -> frozenset[str]:
        """The top-level packages the registered objects live in (read from metadata, nothing imported)."""
        return frozenset(entry.module.partition(".")[0] for entry in self._entries().values())

    def unknown(self, name: str) -> str:
        """The one-line message for a name nothing provides."""
        return (
            f"unknown {self.what} {name!r} (installed: {', '.join(self.names()) or 'none'}; "
            f"a plugin package adds one in the entry-point group {self.group!r})"
        )

    def load(self, name: str) -> Any:
        """The object registered as ``name``; ExtensionError in one line if it is missing or broken."""
        entry = self._entries().get(name)
        if entry is None:
            raise ExtensionError(self.unknown(name))
        try:
            return entry.load()
        except Exception as error:  # a plugin's import can fail in any way; say which and why
            raise ExtensionError(
                f"{self.what} {name!r} from {entry.value} cannot be loaded: {type(error).__name__}: {error}"
            ) from error

    def load_as(self, name: str, protocol: Any, needs: str) -> Any:
        """:meth:`load`, then check the object is a ``protocol`` (a runtime-checkable Protocol);
        ``needs`` names what it lacks in the one-line ExtensionError."""
        found = self.load(name)
        if not isinstance(found, protocol):
            raise ExtensionError(
                f"{self.what} {name!r} is a {type(found).__name__}, not a {self.what} ({needs})"
            )
        return found


ALERT_CHANNELS = ExtensionPoint("alert channel", "conveyor.alert_channels")
MODEL_TYPES = ExtensionPoint(
    "model type", "conveyor.model_types", ("random-forest", "xgboost", "lightgbm", "als", "bpr")
)
DRIFT_TESTS = ExtensionPoint("drift test", "conveyor.drift_tests")
DEPLOYMENT_STRATEGIES = ExtensionPoint("deployment strategy", "conveyor.deploy_strategies")


def require_extra(module: str, extra: str, purpose: str, *, distribution: str | None = None) -> None:
    """Raise ExtensionError in one line when ``module`` (a library one of Conveyor's optional extras
    installs) is missing: ``purpose`` needs it, and the message gives the pip command.

    ``distribution``: the name pip installs it by, when it is not the module's
    (``python-multipart`` installs ``python_multipart``); the message names that one.
    """
    if importlib.util.find_spec(module) is None:
        raise ExtensionError(
            f"{purpose} needs {distribution or module}, which is in Conveyor's {extra!r} extra: "
            f"pip install 'conveyor-ml[{extra}]'"
        )
