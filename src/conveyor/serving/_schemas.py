"""Request and response bodies of the model server (pydantic; they make the OpenAPI document).

Feature values are checked against the served model's own schema in
:mod:`conveyor.serving._validation`; these models only fix the JSON shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

MAX_K = 1000
MAX_ID_LENGTH = 256
FEEDBACK_EVENTS = ("click", "add_to_cart", "purchase", "label")

FeatureValue = StrictInt | StrictFloat | StrictStr | StrictBool | None
Row = dict[str, FeatureValue]
Id = StrictInt | Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Event = Literal["click", "add_to_cart", "purchase", "label"]
# a classifier's true label: a class as the model's answers write it (a string, an integer, a boolean)
Label = StrictInt | StrictBool | Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Mode = Literal["weighted", "sticky"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PredictRequest(_Body):
    """One row (``features``) or a batch (``rows``); ``user_id`` only steers sticky routing."""

    features: Row | None = None
    rows: list[Row] | None = None
    user_id: Id | None = None

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"features": {"age": 31, "plan": "pro"}}]},
    )


class RecommendRequest(_Body):
    user_id: Id
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True


class FeedbackRequest(_Body):
    """A user's reaction to an item (``item_id`` and ``event``: click, add_to_cart, purchase),
    or the true ``label`` of a ``/predict`` answer (``request_id`` and ``label``; ``event``
    may be omitted or ``"label"``). Give the ``request_id`` of the answer when known.

    Which fields go together is checked by the handler, so that each 4xx names its field.
    """

    request_id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)] | None = None
    user_id: Id | None = None
    item_id: Id | None = None
    event: Event | None = None
    label: Label | None = None

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {"request_id": "9e298accd4a24d1cba77a51fbfe27ce0", "item_id": 7, "event": "click"},
                {"request_id": "9e298accd4a24d1cba77a51fbfe27ce0", "label": "churned"},
            ]
        },
    )


class InputWarning(BaseModel):
    """A value answered but unlike the training data: ``unseen_category`` or ``out_of_range``
    (``row``: its index in a batch)."""

    feature: str
    kind: Literal["unseen_category", "out_of_range"]
    row: int | None = None


class PredictResponse(BaseModel):
    predictions: list[Any]
    probabilities: list[list[float]]
    classes: list[Any]
    warnings: list[InputWarning] = []
    model_version: str
    variant: str
    request_id: str


class RecommendResponse(BaseModel):
    user_id: int | str
    items: list[int | str]
    scores: list[float]
    fallback: bool
    model_version: str
    variant: str
    request_id: str


class FeedbackResponse(BaseModel):
    accepted: bool
    request_id: str | None
    model_version: str | None
    variant: str | None


class ErrorResponse(BaseModel):
    """``detail`` names the problem; ``field`` the input at fault; ``error`` is a stable code
    on server-side failures (``model_error``: the model raised; ``internal_error``)."""

    detail: str
    field: str | None = None
    error: str | None = None


class VersionEntry(BaseModel):
    version: str
    variant: str
    share: float
    kind: str
    loaded_at: str


class VersionResponse(BaseModel):
    project: str | None = None  # the project's id (project.id): deploy commands refuse another's server
    env: str
    kind: str | None
    mode: Mode
    salt: str
    primary: str | None
    previous: str | None
    versions: list[VersionEntry]


VersionId = Annotated[StrictInt, Field(ge=0)] | Annotated[StrictStr, Field(min_length=1, max_length=64)]


class VersionRequest(_Body):
    version: VersionId


class TrafficRequest(_Body):
    weights: dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[float, Field(ge=0, le=1e6)]]
    mode: Mode = "weighted"
    salt: Annotated[str, Field(max_length=256)] | None = None
