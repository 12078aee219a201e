"""Micro-batching: concurrent single-row requests share one model call; each caller gets its own row."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from serving_support import ToyClassifier, live_server

from conveyor.config import Settings
from conveyor.serving import MicroBatcher, StaticLoader, create_app

pytestmark = pytest.mark.xdist_group("serving")


def test_batcher_groups_waiting_items_and_answers_each() -> None:
    calls: list[list[int]] = []
    gate = threading.Event()

    def double(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        gate.wait(5)
        return [2 * i for i in items]

    async def run() -> list[int]:
        with ThreadPoolExecutor(1) as pool:
            batcher: MicroBatcher[int, int] = MicroBatcher(
                double, executor=pool, max_batch_size=4, max_wait_ms=50, concurrency=1
            )
            first = asyncio.ensure_future(batcher.submit(100))
            await asyncio.sleep(0.05)  # the first call is now running (and blocked on the gate)
            rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(6)]
            await asyncio.sleep(0.05)
            gate.set()
            answers = await asyncio.gather(first, *rest)
            await batcher.close()
            return list(answers)

    answers = asyncio.run(run())
    assert answers == [200, 0, 2, 4, 6, 8, 10]
    assert calls == [[100], [0, 1, 2, 3], [4, 5]]  # max_batch_size 4 splits the six waiting items


def test_under_load_a_batch_keeps_filling_and_an_idle_model_answers_at_once() -> None:
    calls: list[list[int]] = []
    gate = threading.Event()

    def echo(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        if items[0] == 100:
            gate.wait(5)
        return list(items)

    async def run() -> None:
        with ThreadPoolExecutor(1) as pool:
            # a wait far longer than the test: a batch closes by size, never by time here
            batcher: MicroBatcher[int, int] = MicroBatcher(
                echo, executor=pool, max_batch_size=4, max_wait_ms=60_000, concurrency=1
            )
            alone = await asyncio.wait_for(batcher.submit(7), 30)  # idle model: no wait at all
            assert alone == 7
            first = asyncio.ensure_future(batcher.submit(100))
            await asyncio.sleep(0.05)  # the call for 100 runs, blocked on the gate
            waiting = [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
            await asyncio.sleep(0.05)
            gate.set()  # three were waiting as the call ended: their batch waits for a fourth
            assert await asyncio.wait_for(first, 30) == 100
            await asyncio.sleep(0.05)  # without that wait, [0, 1, 2] would go out now
            late = asyncio.ensure_future(batcher.submit(3))
            assert await asyncio.wait_for(asyncio.gather(*waiting, late), 30) == [0, 1, 2, 3]
            await batcher.close()

    asyncio.run(run())
    assert calls == [[7], [100], [0, 1, 2, 3]]


def test_one_failing_item_does_not_fail_its_batch_neighbours() -> None:
    def strict(items: Sequence[int]) -> list[int]:
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return list(items)

    async def run() -> list[object]:
        with ThreadPoolExecutor(1) as pool:
            batcher: MicroBatcher[int, int] = MicroBatcher(
                strict, executor=pool, max_batch_size=8, max_wait_ms=5
            )
            got = await asyncio.gather(*(batcher.submit(i) for i in (1, -1, 2)), return_exceptions=True)
            await batcher.close()
            return list(got)

    one, bad, two = asyncio.run(run())
    assert (one, two) == (1, 2)
    assert isinstance(bad, ValueError)


def test_concurrent_http_requests_share_model_calls() -> None:
    model = ToyClassifier(delay=0.2)  # slow enough that the others queue behind the first call
    settings = Settings.model_validate(
        {
            "project": {"template": "classifier"},
            "model": {"type": "random-forest"},
            "serving": {"max_batch_size": 64, "max_wait_ms": 20, "workers_threads": 1},
        }
    )
    app = create_app(settings, loader=StaticLoader({"1": model}, initial=["1"]))
    n = 24

    async def fire(base: str) -> list[dict[str, object]]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            replies = await asyncio.gather(
                *(
                    client.post("/predict", json={"features": {"x": i % 11, "y": 0, "color": "c"}})
                    for i in range(n)
                )
            )
        return [r.json() for r in replies]

    with live_server(app) as base:
        bodies = asyncio.run(fire(base))
        batches = httpx.get(f"{base}/metrics").text

    assert sum(model.calls) == n
    assert len(model.calls) < n / 2  # grouped: far fewer model calls than requests
    assert max(model.calls) > 1
    for i, body in enumerate(bodies):  # each caller got its own row's answer
        p = (i % 11) / 10
        assert body["probabilities"] == [pytest.approx([1 - p, p])]
    assert len({b["request_id"] for b in bodies}) == n
    assert "conveyor_batch_rows_count" in batches
