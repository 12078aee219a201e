"""A bounded load from a second process: /recommend at a fixed rate, clicks as feedback.

Usage: python load_client.py URL SECONDS RATE OUT.json STOP — runs until
SECONDS have passed or the file STOP exists, then writes counts of answers by
status and by model version, and the failures, to OUT.json.

Every request names its user, the next of :data:`USERS` in turn: the canary routes sticky by
user and its analysis counts users, so a window holds as many users as requests (up to
:data:`USERS`), and a 10 % step finds enough of them on the candidate.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

THREADS = 8
USERS = 1000


def main() -> None:
    url, seconds, rate, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    stop = Path(sys.argv[5])
    statuses: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    interval = THREADS / rate

    def worker(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=10.0) as client:
            n = 0
            next_at = time.monotonic()
            while time.monotonic() < deadline and not stop.exists():
                user = (offset + n * THREADS) % USERS
                n += 1
                try:
                    response = client.post("/recommend", json={"user_id": user, "k": 5})
                    status = str(response.status_code)
                    version = response.json().get("model_version", "?") if status == "200" else "-"
                    if status == "200" and user % 4 == 0:
                        client.post(
                            "/feedback",
                            json={
                                "request_id": response.json()["request_id"],
                                "item_id": 1,
                                "event": "click",
                            },
                        )
                except httpx.HTTPError as exc:
                    status, version = type(exc).__name__, "-"
                with lock:
                    statuses[status] += 1
                    versions[version] += 1
                    if status != "200":
                        failures.append(status)
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out, "w") as fh:
        json.dump({"statuses": statuses, "versions": versions, "failures": failures[:20]}, fh)


if __name__ == "__main__":
    main()
