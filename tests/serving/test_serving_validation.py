"""Bad requests get a 4xx naming the field — never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serving_support import ToyClassifier, ToyRecommender, live_server

from conveyor.config import Settings
from conveyor.serving import StaticLoader, create_app

pytestmark = pytest.mark.xdist_group("serving")

SETTINGS = Settings.model_validate(
    {
        "project": {"template": "classifier"},
        "model": {"type": "random-forest"},
        "serving": {"max_rows_per_request": 5, "max_body_bytes": 4000},
    }
)
GOOD = {"x": 1.0, "y": 2, "color": "red"}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = create_app(SETTINGS, loader=StaticLoader({"1": ToyClassifier()}, initial=["1"]))
    with live_server(app) as base:
        yield base


def _raw(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


BAD_PREDICTIONS = [
    # (body, status, field, words in the detail)
    (b"{not json", 422, "body", "invalid JSON"),
    ([1, 2], 422, "body", "object"),
    ({}, 422, "body", "exactly one"),
    ({"features": GOOD, "rows": [GOOD]}, 422, "body", "exactly one"),
    ({"features": {"x": 1, "y": 2}}, 422, "features.color", "missing"),
    ({"features": {}}, 422, "features.x", "missing"),
    ({"features": {**GOOD, "z": 3}}, 422, "features.z", "unknown feature"),
    ({"features": {**GOOD, "x": "big"}}, 422, "features.x", "expected a number"),
    ({"features": {**GOOD, "x": True}}, 422, "features.x", "expected a number"),
    ({"features": {**GOOD, "x": None}}, 422, "features.x", "must not be null"),
    ({"features": {**GOOD, "color": 3}}, 422, "features.color", "expected a string"),
    ({"features": {**GOOD, "x": [1]}}, 422, "features.x", ""),
    (b'{"features": {"x": NaN, "y": 1, "color": "a"}}', 422, "features.x", "finite"),
    (b'{"features": {"x": 1, "y": Infinity, "color": "a"}}', 422, "features.y", "finite"),
    (b'{"features": {"x": 1e999, "y": 1, "color": "a"}}', 422, "features.x", "finite"),
    ({"rows": [GOOD, {**GOOD, "y": "two"}]}, 422, "rows.1.y", "expected a number"),
    ({"rows": []}, 422, "rows", "at least one"),
    ({"rows": [GOOD] * 6}, 413, "rows", "limit of 5"),
    ({"features": GOOD, "extra": 1}, 422, "extra", "not permitted"),
    ({"features": GOOD, "user_id": 1.5}, 422, "user_id", ""),
    ({"features": {**GOOD, "pad": "x" * 5000}}, 413, "body", "larger than 4000"),
]


@pytest.mark.parametrize(("body", "status", "field", "words"), BAD_PREDICTIONS)
def test_bad_predict_requests_name_the_field(
    url: str, body: Any, status: int, field: str, words: str
) -> None:
    r = httpx.post(f"{url}/predict", content=_raw(body), headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    answer = r.json()
    assert answer["field"] == field
    assert answer["detail"].startswith(f"{field}: ")
    assert words in answer["detail"]


def test_streamed_body_over_the_limit_is_413(url: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"features": {"x": 1, "y": 2, "color": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}}'

    r = httpx.post(f"{url}/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["field"] == "body"


BAD_OTHERS = [
    ("/recommend", {}, 422, "user_id"),
    ("/recommend", {"user_id": 1, "k": 0}, 422, "k"),
    ("/recommend", {"user_id": 1, "k": 5000}, 422, "k"),
    ("/recommend", {"user_id": [1]}, 422, "user_id"),
    ("/recommend", {"user_id": ""}, 422, "user_id"),
    ("/feedback", {"item_id": 1, "event": "click"}, 422, "body"),
    ("/feedback", {"user_id": 1, "item_id": 1, "event": "like"}, 422, "event"),
    ("/feedback", {"user_id": 1, "event": "click"}, 422, "item_id"),
    ("/feedback", {"user_id": 1}, 422, "event"),
    ("/feedback", {"user_id": 1, "label": "yes"}, 422, "request_id"),
    ("/feedback", {"request_id": "r1", "event": "label"}, 422, "label"),
    ("/feedback", {"request_id": "r1", "item_id": 1, "event": "click", "label": "yes"}, 422, "label"),
    ("/feedback", {"request_id": "r1", "item_id": 1, "label": "yes"}, 422, "item_id"),
    ("/feedback", {"request_id": "r1", "label": ["yes"]}, 422, "label"),
    ("/feedback", {"request_id": "r1", "label": 1.5}, 422, "label"),
    ("/feedback", {"request_id": "r1", "label": "yes"}, 409, "label"),  # this server recommends
]


@pytest.mark.parametrize(("path", "body", "status", "field"), BAD_OTHERS)
def test_bad_recommend_and_feedback_requests(url: str, path: str, body: Any, status: int, field: str) -> None:
    app = create_app(Settings(), loader=StaticLoader({"1": ToyRecommender()}, initial=["1"]))
    with live_server(app) as rec:
        r = httpx.post(f"{rec}{path}", json=body)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field


def test_nothing_loaded_is_503_not_500() -> None:
    app = create_app(SETTINGS, loader=StaticLoader({}))
    with live_server(app) as base:
        assert httpx.get(f"{base}/ready").status_code == 503
        r = httpx.post(f"{base}/predict", json={"features": GOOD})
    assert r.status_code == 503
    assert r.json()["field"] == "model"
