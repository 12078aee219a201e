"""The state store's round trips: the local folder against PostgreSQL, same operations, same process.

For each store, ``--ops`` times each (medians and 95th percentiles, in milliseconds):

* **ledger append** — ``Ledger.append`` of one deployment line (fsync-ed file line / one
  committed row under the log's advisory lock);
* **ledger read** — ``Ledger.entries()`` of a ledger holding ``--ops`` lines (what
  ``conveyor status`` reads per environment);
* **document CAS** — ``get`` then ``put(expected=version)`` of a small document (an A/B plan,
  the monitoring state);
* **lock round trip** — ``lock`` then ``release`` of ``envs/production/deploy`` with its
  holder record (a file ``flock`` / a PostgreSQL session advisory lock on its own connection).

PostgreSQL is the server named by ``--uri`` (or ``CONVEYOR_STATE_URI``); without either, the
benchmark starts Debian's PostgreSQL on a free loopback port as the tests do
(``tests/services.py``). The local folder is a temporary folder on the same disk.
:func:`measure` is the hook the shared-stores benchmark calls with any store.

    .venv/bin/python -m benchmarks.state_store [--ops 200] [--uri postgresql://…]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks._env import environment_header, load_line
from conveyor.deploy import Ledger, LedgerEntry
from conveyor.state import LocalStore, StateStore

OPERATIONS = ("ledger append", "ledger read", "document CAS", "lock round trip")


def _timed(fn: Callable[[], object], times: int) -> list[float]:
    found = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        found.append((time.perf_counter() - started) * 1000)
    return found


def measure(store: StateStore, ops: int = 200) -> dict[str, list[float]]:
    """Milliseconds of each operation of :data:`OPERATIONS`, ``ops`` times each, on ``store``."""
    ledger = Ledger(store)
    entry = LedgerEntry("production", "deploy", "ok", "7", "blue-green", "benchmark", who="bench")
    results = {"ledger append": _timed(lambda: ledger.append(entry), ops)}
    results["ledger read"] = _timed(ledger.entries, max(10, ops // 10))
    store.put("bench/plan", {"n": 0})

    def cas() -> None:
        doc = store.get("bench/plan")
        if doc is None:
            raise RuntimeError("the benchmark's document vanished")
        store.put("bench/plan", {"n": doc.data["n"] + 1}, expected=doc.version)

    results["document CAS"] = _timed(cas, ops)

    def lock_round_trip() -> None:
        store.lock("envs/production/deploy", record={"pid": os.getpid(), "action": "bench"}).release()

    results["lock round trip"] = _timed(lock_round_trip, ops)
    return results


def _row(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"| {name} | {len(values)} | {statistics.median(values):.2f} | {p95:.2f} |"


@contextlib.contextmanager
def _postgres(uri: str | None) -> Iterator[str]:
    if uri:
        yield uri
        return
    from benchmarks._shared_services import services  # the tests' PostgreSQL: initdb on a free port

    with services().running_postgres() as server:
        yield server.create_database(f"bench_{uuid.uuid4().hex[:8]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.state_store", description=__doc__)
    parser.add_argument("--ops", type=int, default=200, help="times each operation runs per store")
    parser.add_argument("--uri", default=os.environ.get("CONVEYOR_STATE_URI"), help="PostgreSQL URI")
    args = parser.parse_args(argv)
    command = f"python -m benchmarks.state_store --ops {args.ops}"
    print(environment_header("state_store", command=command), flush=True)
    measured: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder, _postgres(args.uri) as uri:
        from conveyor.state import PostgresStore

        stores: dict[str, StateStore] = {"local folder": LocalStore(Path(folder))}
        pg = PostgresStore(uri)
        pg.check()  # tables created before the clock starts
        stores[f"PostgreSQL ({pg.location.split('@')[-1].split('/')[0]})"] = pg
        for label, store in stores.items():
            measured[label] = measure(store, args.ops)
        pg.dispose()
    print("\nmilliseconds per operation (median, 95th percentile), one process, loopback")
    for label, results in measured.items():
        print(f"\n{label}\n\n| operation | n | median ms | p95 ms |\n|---|---|---|---|")
        for name in OPERATIONS:
            print(_row(name, results[name]))
    print(load_line("after"))
    summary = {
        label: {name: statistics.median(values) for name, values in results.items()}
        for label, results in measured.items()
    }
    print(json.dumps({"benchmark": "state_store", "ops": args.ops, "median_ms": summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
