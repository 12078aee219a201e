"""Routing: sticky A/B, weighted canary, atomic blue-green switch, rollback, and the admin API."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from serving_support import ToyClassifier, live_server

from conveyor.config import Settings
from conveyor.serving import Routing, RoutingConflict, StaticLoader, create_app
from conveyor.serving._router import Served

pytestmark = pytest.mark.xdist_group("serving")

TOKEN = "s3cret-admin-token-for-tests"
SETTINGS = Settings.model_validate(
    {
        "project": {"template": "classifier"},
        "model": {"type": "random-forest"},
        "serving": {"admin_token_env": "CONVEYOR_TEST_ADMIN_TOKEN"},
    }
)
ROW = {"x": 5, "y": 0, "color": "c"}


def _routing(*versions: str) -> Routing:
    routing = Routing()
    for v in versions:
        routing = routing.with_loaded(Served(v, ToyClassifier(), datetime.now(UTC), batcher=None))
    return routing


def test_sticky_assignment_is_deterministic_and_realises_the_ratio() -> None:
    routing = _routing("1", "2").with_traffic({"1": 0.9, "2": 0.1}, "sticky", "exp-1")
    users = range(20_000)
    arms = [routing.choose(u).version for u in users]  # type: ignore[union-attr]
    again = _routing("1", "2").with_traffic({"2": 1, "1": 9}, "sticky", "exp-1")  # same split, other order
    assert arms == [again.choose(u).version for u in users]  # type: ignore[union-attr]
    share = arms.count("2") / len(arms)
    assert abs(share - 0.1) < 0.01  # 4.7 standard errors of a binomial share at n = 20,000
    other_salt = routing.with_traffic({"1": 0.9, "2": 0.1}, "sticky", "exp-2")
    assert arms != [other_salt.choose(u).version for u in users]  # type: ignore[union-attr]
    assert routing.choose("42") is routing.choose(42)  # ids are compared as text


def test_weighted_mode_draws_by_share() -> None:
    routing = _routing("1", "2").with_traffic({"1": 0.5, "2": 0.5}, "weighted", None)
    counts = Counter(routing.choose(7).version for _ in range(4000))  # type: ignore[union-attr]
    assert 1700 < counts["2"] < 2300  # same user, both arms: no stickiness in weighted mode


def test_switch_and_rollback_rules() -> None:
    routing = _routing("1", "2")
    assert routing.primary == "1"
    assert routing.variant("2") == "idle"
    canary = routing.with_traffic({"1": 0.9, "2": 0.1}, "weighted", None)
    assert (canary.variant("1"), canary.variant("2")) == ("primary", "candidate")
    aborted = canary.with_rollback()
    assert aborted.shares == (("1", 1.0),)
    switched = canary.with_switch("2")
    assert (switched.primary, switched.previous, switched.shares) == ("2", "1", (("2", 1.0),))
    back = switched.with_rollback()
    assert (back.primary, back.previous, back.shares) == ("1", "2", (("1", 1.0),))
    with pytest.raises(RoutingConflict, match="serves traffic"):
        switched.without("2")
    with pytest.raises(RoutingConflict, match="not loaded"):
        routing.with_switch("9")
    with pytest.raises(RoutingConflict, match="nothing to roll back"):
        routing.with_rollback()


@pytest.fixture
def admin_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CONVEYOR_TEST_ADMIN_TOKEN", TOKEN)
    loader = StaticLoader(
        {"1": ToyClassifier(), "2": ToyClassifier(shift=0.5), "3": ToyClassifier()}, initial=["1"]
    )
    app = create_app(SETTINGS, loader=loader)
    with live_server(app) as url:
        yield url


def _admin(url: str, path: str, body: object = None, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(f"{url}/admin/{path}", json=body, headers=headers, timeout=30)


def test_admin_needs_the_token_and_never_shows_it(
    admin_url: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    seen = []
    for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
        r = _admin(admin_url, "switch", {"version": "1"}, token=token)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        seen.append(r.text)
    for header in (TOKEN, f"Basic {TOKEN}"):  # the token without the Bearer scheme
        r = httpx.post(f"{admin_url}/admin/load", json={"version": "2"}, headers={"Authorization": header})
        assert r.status_code == 401
    ok = _admin(admin_url, "load", {"version": "2"})
    assert ok.status_code == 200
    seen += [ok.text, httpx.get(f"{admin_url}/openapi.json").text, httpx.get(f"{admin_url}/metrics").text]
    out, err = capfd.readouterr()
    assert all(TOKEN not in text for text in [*seen, out, err, caplog.text])


def test_admin_load_traffic_switch_rollback_unload(admin_url: str) -> None:
    loaded = _admin(admin_url, "load", {"version": 2}).json()
    assert [(v["version"], v["variant"], v["share"]) for v in loaded["versions"]] == [
        ("1", "primary", 1.0),
        ("2", "idle", 0.0),
    ]
    assert _admin(admin_url, "load", {"version": "99"}).status_code == 404
    ab = _admin(admin_url, "traffic", {"weights": {"1": 1, "2": 1}, "mode": "sticky", "salt": "ab"}).json()
    assert (ab["mode"], ab["salt"]) == ("sticky", "ab")
    for user in ("u1", "u2", "u3", "u4", "u5"):
        versions = {
            httpx.post(f"{admin_url}/predict", json={"features": ROW, "user_id": user}).json()[
                "model_version"
            ]
            for _ in range(4)
        }
        assert len(versions) == 1  # sticky: one user, one arm
    assert _admin(admin_url, "traffic", {"weights": {"1": 1, "9": 1}}).status_code == 409
    assert _admin(admin_url, "unload", {"version": "2"}).status_code == 409  # it has traffic
    switched = _admin(admin_url, "switch", {"version": "2"}).json()
    assert (switched["primary"], switched["previous"]) == ("2", "1")
    body = httpx.post(f"{admin_url}/predict", json={"features": ROW}).json()
    assert (body["model_version"], body["variant"]) == ("2", "primary")
    rolled = _admin(admin_url, "rollback").json()
    assert (rolled["primary"], rolled["previous"]) == ("1", "2")
    unloaded = _admin(admin_url, "unload", {"version": "2"}).json()
    assert [v["version"] for v in unloaded["versions"]] == ["1"]
    assert _admin(admin_url, "rollback").status_code == 409


def test_switch_under_concurrent_load_drops_nothing(admin_url: str) -> None:
    _admin(admin_url, "load", {"version": "2"})

    async def traffic(client: httpx.AsyncClient, stop: asyncio.Event) -> list[httpx.Response]:
        replies = []
        while not stop.is_set():
            replies.append(await client.post("/predict", json={"features": ROW}))
        return replies

    async def run() -> tuple[list[httpx.Response], list[str]]:
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=admin_url, timeout=30, limits=limits) as client:
            workers = [asyncio.ensure_future(traffic(client, stop)) for _ in range(12)]
            headers = {"Authorization": f"Bearer {TOKEN}"}
            primaries = []
            for i in range(20):
                target = "2" if i % 2 == 0 else "1"
                r = await client.post("/admin/switch", json={"version": target}, headers=headers)
                primaries.append(r.json()["primary"])
                if i == 10:  # a load beside the serving versions, under load
                    await client.post("/admin/load", json={"version": "3"}, headers=headers)
                await asyncio.sleep(0.02)
            stop.set()
            replies = [r for w in workers for r in await w]
        return replies, primaries

    replies, primaries = asyncio.run(run())
    assert primaries == ["2", "1"] * 10
    assert len(replies) > 50
    assert [r.status_code for r in replies] == [200] * len(replies)
    assert {r.json()["model_version"] for r in replies} == {"1", "2"}
