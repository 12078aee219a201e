"""Simulated shoppers: real HTTP requests to a running server, clicks from true tastes.

Each shopper asks ``POST /recommend`` for ``k`` items and clicks each one with
the probability the shop world planted (``ShopWorld.click_probability``);
every click is sent back as ``POST /feedback``. The server, its router, its
request log and everything downstream are the real ones: only the people are
simulated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from conveyor.data import ShopWorld


@dataclass
class TrafficSummary:
    """What the simulated shoppers saw: requests, errors and clicks per variant."""

    requests: int = 0
    errors: int = 0
    clicks: int = 0
    by_arm: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, arm: str, key: str, n: int = 1) -> None:
        self.by_arm.setdefault(arm, Counter())[key] += n

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "clicks": self.clicks,
            "by_arm": {arm: dict(c) for arm, c in self.by_arm.items()},
        }


def _shop(base_url: str, world: ShopWorld, users: Sequence[int], k: int, seed: int) -> TrafficSummary:
    rng = np.random.default_rng(seed)
    out = TrafficSummary()
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        for user in users:
            out.requests += 1
            resp = client.post("/recommend", json={"user_id": int(user), "k": k})
            if resp.status_code != 200:
                out.errors += 1
                continue
            body = resp.json()
            arm = f"{body['variant']}:{body['model_version']}"
            out.add(arm, "requests")
            items = np.asarray(body["items"], dtype=np.int64)
            if items.size == 0:
                continue
            p = world.click_probability(np.full(items.size, int(user), dtype=np.int64), items)
            clicked = items[rng.random(items.size) < p]
            if clicked.size:
                out.add(arm, "requests_with_click")
            for item in clicked:
                fb = client.post(
                    "/feedback",
                    json={"request_id": body["request_id"], "item_id": int(item), "event": "click"},
                )
                if fb.status_code >= 400:
                    out.errors += 1
                else:
                    out.clicks += 1
                    out.add(arm, "clicks")
    return out


def simulate_shoppers(
    base_url: str,
    world: ShopWorld,
    users: Sequence[int],
    *,
    k: int = 10,
    concurrency: int = 8,
    seed: int = 0,
) -> TrafficSummary:
    """Send one visit per user in ``users`` (bounded: exactly ``len(users)`` visits)."""
    chunks = [list(users[i::concurrency]) for i in range(concurrency)]
    total = TrafficSummary()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        parts = pool.map(lambda a: _shop(base_url, world, a[1], k, seed + a[0]), enumerate(chunks))
        for part in parts:
            total.requests += part.requests
            total.errors += part.errors
            total.clicks += part.clicks
            for arm, counts in part.by_arm.items():
                total.by_arm.setdefault(arm, Counter()).update(counts)
    return total
