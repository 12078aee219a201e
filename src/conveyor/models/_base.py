"""The model interface every trainer implements (the contract serving and evaluation rely on).

Constructors only store parameters; ``fit`` learns state into attributes
ending in ``_``; using an unfitted model raises :class:`NotFittedError`.
``save(directory)`` writes the model's files plus a manifest
(``conveyor-model.json``) naming the implementation, so that
:func:`load_model` can bring any saved model back without knowing its type.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl

from conveyor.errors import InputError, OperationError
from conveyor.extensions import MODEL_TYPES
from conveyor.models._encoding import FeatureSpec

MANIFEST = "conveyor-model.json"
ModelKind = Literal["classifier", "recommender"]


class NotFittedError(OperationError):
    """The model was used before ``fit``: call fit first."""


class Model(ABC):
    """A trainable, savable model."""

    kind: ClassVar[ModelKind]

    @abstractmethod
    def fit(self, data: pl.DataFrame) -> Self:
        """Learn from ``data``; returns self."""

    @abstractmethod
    def _save_files(self, directory: Path) -> dict[str, Any]:
        """Write the learned state into ``directory``; return manifest extras."""

    @classmethod
    @abstractmethod
    def _load_files(cls, directory: Path, manifest: dict[str, Any]) -> Self:
        """Rebuild a fitted model from ``directory``."""

    @abstractmethod
    def is_fitted(self) -> bool:
        """True once ``fit`` has run (or the model was loaded)."""

    def check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit first")

    def save(self, directory: Path) -> None:
        """Write the model and its manifest into ``directory`` (created if missing)."""
        self.check_fitted()
        directory.mkdir(parents=True, exist_ok=True)
        extras = self._save_files(directory)
        manifest = {
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "kind": self.kind,
            **extras,
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))

    @classmethod
    def load(cls, directory: Path) -> Self:
        model = load_model(directory)
        if not isinstance(model, cls):
            raise InputError(f"{directory}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model


class Classifier(Model):
    """A tabular classifier: rows in, class probabilities out."""

    kind: ClassVar[ModelKind] = "classifier"

    @property
    @abstractmethod
    def feature_names(self) -> list[str]:
        """Input columns, in the order the model expects them."""

    @property
    @abstractmethod
    def feature_types(self) -> dict[str, str]:
        """Input column → "numeric" or "categorical" (for request validation)."""

    @property
    def feature_specs(self) -> dict[str, FeatureSpec]:
        """Name → :class:`FeatureSpec` (nullability, seen categories, range) for serving checks.

        This default knows only the types: no nulls allowed, no categories or range to flag.
        """
        return {name: FeatureSpec(name=name, kind=kind) for name, kind in self.feature_types.items()}

    @property
    @abstractmethod
    def classes(self) -> list[Any]:
        """Class labels, in the column order of ``predict_proba``."""

    @abstractmethod
    def predict_proba(self, rows: pl.DataFrame) -> np.ndarray:
        """Probabilities, shape (n_rows, n_classes)."""

    def predict(self, rows: pl.DataFrame) -> np.ndarray:
        """The most probable class per row."""
        proba = self.predict_proba(rows)
        labels: np.ndarray = np.asarray(self.classes, dtype=object)[np.argmax(proba, axis=1)]
        return labels


@dataclass(frozen=True)
class Recommendation:
    """Top-k items for one user. ``fallback`` is True when the user was unknown."""

    user_id: int | str
    items: list[int | str]
    scores: list[float]
    fallback: bool


class Recommender(Model):
    """Implicit-feedback recommender: users in, ranked items out."""

    kind: ClassVar[ModelKind] = "recommender"

    @abstractmethod
    def recommend(
        self, user_ids: Sequence[int | str], k: int, *, exclude_seen: bool = True
    ) -> list[Recommendation]:
        """Top-``k`` items per user; unknown users get the popularity fallback."""

    @abstractmethod
    def popular(self, k: int) -> list[int | str]:
        """The ``k`` most popular items of the training data."""

    @abstractmethod
    def knows_user(self, user_id: int | str) -> bool:
        """True when the user was in the training data."""


def load_model(directory: Path) -> Model:
    """Load any saved model from its manifest."""
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        module_name, _, qualname = manifest["class"].partition(":")
    except FileNotFoundError:
        raise InputError(
            f"{directory}: no {MANIFEST}; not a saved Conveyor model", path=str(directory)
        ) from None
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise InputError(
            f"{manifest_path}: unreadable model manifest ({exc})", path=str(manifest_path)
        ) from exc
    # a manifest names the class to import: only Conveyor's own, or one of a package that registers a
    # model type (conveyor.model_types), so a planted manifest cannot import arbitrary code
    top = module_name.partition(".")[0]
    if not module_name.startswith("conveyor.") and top not in MODEL_TYPES.packages():
        raise InputError(
            f"{manifest_path}: refuses to load class {manifest['class']!r} outside conveyor "
            "and the packages that register a model type"
        )
    cls = getattr(importlib.import_module(module_name), qualname, None)
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise InputError(f"{manifest_path}: unknown model class {manifest['class']!r}")
    return cls._load_files(directory, manifest)
