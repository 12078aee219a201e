"""Contract of every public endpoint, on a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving_support import ToyClassifier, ToyRecommender, live_server

from conveyor.config import Settings
from conveyor.serving import StaticLoader, create_app

pytestmark = pytest.mark.xdist_group("serving")

CLASSIFIER_SETTINGS = Settings.model_validate(
    {"project": {"template": "classifier"}, "model": {"type": "random-forest"}}
)


@pytest.fixture(scope="module")
def clf_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    loader = StaticLoader({"1": ToyClassifier(), "2": ToyClassifier(shift=0.5)}, initial=["1"])
    log_dir = tmp_path_factory.mktemp("log")
    app = create_app(CLASSIFIER_SETTINGS, loader=loader, env="staging", log_dir=log_dir)
    with live_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def rec_url() -> Iterator[str]:
    app = create_app(Settings(), loader=StaticLoader({"7": ToyRecommender()}, initial=["7"]))
    with live_server(app) as url:
        yield url


def test_predict_one_row_returns_known_probabilities(clf_url: str) -> None:
    r = httpx.post(f"{clf_url}/predict", json={"features": {"x": 8, "y": 0.5, "color": "red"}})
    assert r.status_code == 200
    body = r.json()
    assert body["predictions"] == ["yes"]
    assert body["probabilities"] == [pytest.approx([0.2, 0.8])]
    assert body["classes"] == ["no", "yes"]
    assert body["model_version"] == "1"
    assert body["variant"] == "primary"
    assert len(body["request_id"]) == 32


def test_predict_batch_keeps_row_order(clf_url: str) -> None:
    rows = [{"x": x, "y": 0.0, "color": "blue"} for x in (1, 9, 3)]
    body = httpx.post(f"{clf_url}/predict", json={"rows": rows}).json()
    assert body["predictions"] == ["no", "yes", "no"]
    assert [p[1] for p in body["probabilities"]] == pytest.approx([0.1, 0.9, 0.3])


def test_health_ready_version(clf_url: str) -> None:
    assert httpx.get(f"{clf_url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{clf_url}/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "versions": ["1"]}
    version = httpx.get(f"{clf_url}/version").json()
    assert version["env"] == "staging"
    assert version["kind"] == "classifier"
    assert version["mode"] == "weighted"
    assert version["primary"] == "1"
    assert [(v["version"], v["variant"], v["share"]) for v in version["versions"]] == [("1", "primary", 1.0)]


def test_openapi_document_lists_the_endpoints(clf_url: str) -> None:
    doc = httpx.get(f"{clf_url}/openapi.json").json()
    assert {"/predict", "/recommend", "/feedback", "/health", "/ready", "/version", "/metrics"} <= set(
        doc["paths"]
    )
    assert not any(p.startswith("/admin") for p in doc["paths"])  # no token configured: admin is off


def test_docs_page_is_served_offline_from_the_server_itself(clf_url: str) -> None:
    """/docs references only same-origin URLs (no CDN) and every one of them answers 200."""
    page = httpx.get(f"{clf_url}/docs")
    assert page.status_code == 200
    assert "SwaggerUIBundle" in page.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
    found = sorted({a or b for a, b in urls})
    assert "/docs/assets/swagger-ui-bundle.js" in found
    assert "/docs/assets/swagger-ui.css" in found
    assert "/openapi.json" in found
    assert not [u for u in found if "//" in u], f"not same-origin: {found}"
    assert "cdn" not in page.text.lower()
    for url in found:
        answer = httpx.get(f"{clf_url}{url}")
        assert answer.status_code == 200, url
        assert answer.content
    assert httpx.get(f"{clf_url}/docs/assets/swagger-ui-bundle.js").text.lstrip().startswith(("/*", "!"))
    assert httpx.get(f"{clf_url}/redoc").status_code == 404  # ReDoc would need a CDN: not served


def test_admin_is_off_without_token(clf_url: str) -> None:
    r = httpx.post(f"{clf_url}/admin/switch", json={"version": "2"}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 404


def test_wrong_endpoint_for_the_model_kind_is_409(clf_url: str, rec_url: str) -> None:
    r = httpx.post(f"{clf_url}/recommend", json={"user_id": 1})
    assert r.status_code == 409
    assert r.json()["field"] == "endpoint"
    r = httpx.post(f"{rec_url}/predict", json={"features": {"x": 1}})
    assert r.status_code == 409


def test_recommend_known_user_and_fallback(rec_url: str) -> None:
    body = httpx.post(f"{rec_url}/recommend", json={"user_id": 3, "k": 3}).json()
    assert body["items"] == [4, 5, 6]
    assert body["scores"] == pytest.approx([1.0, 0.5, 1 / 3])
    assert body["fallback"] is False
    assert (body["model_version"], body["variant"], body["user_id"]) == ("7", "primary", 3)
    unknown = httpx.post(f"{rec_url}/recommend", json={"user_id": "stranger", "k": 2}).json()
    assert unknown["items"] == [100, 101]
    assert unknown["fallback"] is True


def test_feedback_is_attributed_to_the_serving_version(rec_url: str) -> None:
    rec = httpx.post(f"{rec_url}/recommend", json={"user_id": 2, "k": 1}).json()
    r = httpx.post(
        f"{rec_url}/feedback", json={"request_id": rec["request_id"], "item_id": 3, "event": "click"}
    )
    assert r.status_code == 202
    assert r.json() == {
        "accepted": True,
        "request_id": rec["request_id"],
        "model_version": "7",
        "variant": "primary",
    }
    by_user = httpx.post(f"{rec_url}/feedback", json={"user_id": 2, "item_id": 3, "event": "purchase"}).json()
    assert by_user["model_version"] == "7"
    nobody = httpx.post(f"{rec_url}/feedback", json={"user_id": 999, "item_id": 3, "event": "click"}).json()
    assert nobody["model_version"] is None


def _families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    return {
        f.name: [(s.name, s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)
    }


def test_metrics_count_requests_feedback_and_latency(rec_url: str) -> None:
    httpx.post(f"{rec_url}/recommend", json={"user_id": 1, "k": 2})
    httpx.post(f"{rec_url}/feedback", json={"user_id": 1, "item_id": 2, "event": "add_to_cart"})
    httpx.post(f"{rec_url}/recommend", json={"user_id": 1, "k": 0})  # 422 before routing
    r = httpx.get(f"{rec_url}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = _families(r.text)
    ok = [
        s
        for s in families["conveyor_requests"]
        if s[1] == {"endpoint": "/recommend", "model_version": "7", "variant": "primary", "code": "200"}
    ]
    assert ok
    assert ok[0][2] >= 1
    feedback = {
        (s[1]["event"], s[1]["model_version"], s[1]["variant"]): s[2]
        for s in families["conveyor_feedback_events"]
        if s[0].endswith("_total")
    }
    assert feedback[("add_to_cart", "7", "primary")] >= 1
    latency = [s for s in families["conveyor_request_latency_seconds"] if s[0].endswith("_count")]
    assert any(s[1]["endpoint"] == "/recommend" and s[2] >= 1 for s in latency)
    shares = {s[1]["model_version"]: s[2] for s in families["conveyor_traffic_share"]}
    assert shares == {"7": 1.0}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) absent")
def test_promtool_accepts_the_metrics(rec_url: str, tmp_path: Path) -> None:
    httpx.post(f"{rec_url}/recommend", json={"user_id": 1, "k": 2})
    text = httpx.get(f"{rec_url}/metrics").text
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == ""
    assert checked.stderr.strip() == ""
