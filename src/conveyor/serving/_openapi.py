"""The OpenAPI document with the served model's own request schema.

FastAPI describes ``/predict`` with the generic body of :mod:`._schemas` (any feature
names, any values). While a classifier serves, the document also names its features:
``components.schemas.ModelFeatures`` lists each feature with its JSON type (nullable
where the model saw nulls in training), the categories seen in training and the
numeric range beyond which a value is flagged, and ``features`` / ``rows`` of
``PredictRequest`` refer to it. The document is rebuilt on each request from the
primary version of the moment, so it follows a switch or a rollback.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from conveyor.models import FeatureSpec
from conveyor.serving._state import ServerState
from conveyor.serving._validation import NUMERIC

MODEL_FEATURES = "ModelFeatures"
_REF = {"$ref": f"#/components/schemas/{MODEL_FEATURES}"}


def feature_schema(specs: Mapping[str, FeatureSpec], version: str) -> dict[str, Any]:
    """The JSON schema of one feature row of the model (``version`` in the title)."""
    properties: dict[str, Any] = {}
    for name, spec in specs.items():
        kind = "number" if spec.kind == NUMERIC else "string"
        prop: dict[str, Any] = {"type": [kind, "null"] if spec.nullable else kind}
        notes = ["nullable" if spec.nullable else "not nullable"]
        if spec.categories is not None:
            prop["x-categories-seen"] = list(spec.categories)
            notes.append(
                f"{len(spec.categories)} categories seen in training; others are flagged unseen_category"
            )
        if spec.low is not None and spec.high is not None:
            prop["x-expected-range"] = [spec.low, spec.high]
            notes.append(f"values outside [{spec.low:g}, {spec.high:g}] are flagged out_of_range")
        prop["description"] = f"{spec.kind} feature: " + "; ".join(notes)
        properties[name] = prop
    return {
        "title": f"Features of model version {version}",
        "type": "object",
        "properties": properties,
        "required": list(specs),
        "additionalProperties": False,
    }


def with_model_schema(
    document: dict[str, Any], specs: Mapping[str, FeatureSpec], version: str
) -> dict[str, Any]:
    """A copy of ``document`` whose ``PredictRequest`` refers to the model's features."""
    out = copy.deepcopy(document)
    schemas = out.setdefault("components", {}).setdefault("schemas", {})
    schemas[MODEL_FEATURES] = feature_schema(specs, version)
    request = schemas.get("PredictRequest", {}).get("properties", {})
    if "features" in request:
        request["features"] = {"anyOf": [_REF, {"type": "null"}], "title": "Features"}
    if "rows" in request:
        request["rows"] = {"anyOf": [{"type": "array", "items": _REF}, {"type": "null"}], "title": "Rows"}
    out.setdefault("info", {})["x-model-version"] = version
    return out


def model_openapi(generic: Callable[[], dict[str, Any]], state: ServerState) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` replaced: the generic document plus the primary classifier's features."""

    def openapi() -> dict[str, Any]:
        document = generic()  # FastAPI builds it once and caches it
        routing = state.routing
        served = routing.served.get(routing.primary) if routing.primary is not None else None
        if served is None or served.feature_specs is None:
            return document
        return with_model_schema(document, served.feature_specs, served.version)

    return openapi
