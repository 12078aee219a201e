"""What a model type is: the small contract behind each ``model.type`` name.

A model type is an object registered in the entry-point group ``conveyor.model_types``
(:data:`conveyor.extensions.MODEL_TYPES`): Conveyor's own five are declared in its
pyproject.toml exactly as a plugin package declares its own (docs/extending.md). The
configuration, ``--model-type`` and the JSON Schema list the registered names; training asks
the object for its parameters, an unfitted model and the baseline to beat. Everything after
``fit`` follows from the model it returns: a :class:`~conveyor.models.Recommender` is
evaluated with ranking metrics and served on ``/recommend``, a
:class:`~conveyor.models.Classifier` with classification metrics on ``/predict``; both save and
load through their manifest, which is also what the MLflow ``python_function`` flavour loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from conveyor.extensions import MODEL_TYPES
from conveyor.models._base import Model, ModelKind

if TYPE_CHECKING:
    from conveyor.config import Settings


@runtime_checkable
class ModelTypeSpec(Protocol):
    """One kind of model ``model.type`` can name.

    - ``kind``: "recommender" or "classifier" — the project template it fits, its evaluation
      metrics, its serving endpoint and its python_function input and output;
    - ``engines``: where it can be fitted ("local", and "spark" for a Spark implementation);
    - ``params``: the parameters of a run — ``given`` (conveyor.yaml and ``--param``) over the
      type's defaults, in the names the model takes; they are part of the run's reuse key;
    - ``create``: an unfitted model (a :class:`~conveyor.models.Model` subclass) with ``params``;
      an optional training library that is missing is one line (``require_extra``);
    - ``baseline``: the unfitted model it must beat (most popular items, class priors).
    """

    @property
    def kind(self) -> ModelKind: ...

    @property
    def engines(self) -> tuple[str, ...]: ...

    def params(self, given: Mapping[str, Any], settings: Settings) -> dict[str, Any]: ...

    def create(self, params: Mapping[str, Any], settings: Settings) -> Model: ...

    def baseline(self, settings: Settings) -> Model: ...


def model_type_spec(name: str) -> ModelTypeSpec:
    """The model type registered as ``name``; ExtensionError in one line if none is, or it is broken."""
    spec: ModelTypeSpec = MODEL_TYPES.load_as(
        str(name), ModelTypeSpec, "needs kind, engines, params(), create(), baseline()"
    )
    return spec


__all__ = ["ModelTypeSpec", "model_type_spec"]
