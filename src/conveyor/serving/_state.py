"""The state of one running server: its routing, its worker threads, its metrics and request log.

Everything here runs on the event loop except the model calls and loads, which go to a
thread pool. The routing is one immutable value swapped by reference (see ``_router``),
so changes need no lock on the request path; admin changes are serialised by one
``asyncio.Lock``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from conveyor.config import ServingSection
from conveyor.models import Classifier, FeatureSpec, Model, Recommender
from conveyor.requestlog import RequestLog
from conveyor.serving._batcher import MicroBatcher
from conveyor.serving._loader import ModelLoader
from conveyor.serving._metrics import ServerMetrics
from conveyor.serving._router import Mode, Routing, Served
from conveyor.serving._validation import rows_to_frame

REMEMBERED_REQUESTS = 200_000
T = TypeVar("T")


class _Recent:
    """A bounded map, oldest entries evicted first (event-loop only, so no lock)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def put(self, key: str, value: tuple[str, str]) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, key: str) -> tuple[str, str] | None:
        return self._items.get(key)


def _plain(value: Any) -> Any:
    """numpy scalars → Python values (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def single_threaded(fn: Callable[[], T]) -> T:
    """Run one model call without its own thread fan-out (joblib runs sequentially here).

    The server's parallelism is its worker threads and micro-batching; a forest's
    ``n_jobs=-1`` inside every call costs more than it gains (about 25 ms against 5 ms for
    one 100-tree call on 2 cores). BLAS and OpenMP pools are limited process-wide while
    the app runs (see ``limit_native_threads``).
    """
    from joblib import parallel_config

    with parallel_config(backend="sequential"):
        return fn()


def limit_native_threads() -> Any:
    """Limit BLAS/OpenMP pools to one thread each; returns the handle to restore them."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def classify(
    model: Classifier, feature_types: Mapping[str, str], items: Sequence[list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """One model call for several requests' rows; each request gets its own slice back."""
    rows = [row for item in items for row in item]
    frame = rows_to_frame(rows, feature_types)
    proba = np.asarray(single_threaded(lambda: model.predict_proba(frame)), dtype=float)
    classes = [_plain(c) for c in model.classes]
    labels = np.argmax(proba, axis=1).tolist()
    probabilities = proba.tolist()
    answers: list[dict[str, Any]] = []
    start = 0
    for item in items:
        end = start + len(item)
        answers.append(
            {
                "predictions": [classes[i] for i in labels[start:end]],
                "probabilities": probabilities[start:end],
                "classes": classes,
            }
        )
        start = end
    return answers


def recommend(model: Recommender, items: Sequence[tuple[int | str, int, bool]]) -> list[dict[str, Any]]:
    """One model call per (k, exclude_seen) group of several requests' users."""
    answers: list[dict[str, Any] | None] = [None] * len(items)
    groups: dict[tuple[int, bool], list[int]] = {}
    for i, (_, k, exclude) in enumerate(items):
        groups.setdefault((k, exclude), []).append(i)
    for (k, exclude), positions in groups.items():
        users = [items[i][0] for i in positions]
        recs = single_threaded(lambda: model.recommend(users, k, exclude_seen=exclude))  # noqa: B023
        for i, rec in zip(positions, recs, strict=True):
            answers[i] = {
                "items": [_plain(x) for x in rec.items],
                "scores": [float(s) for s in rec.scores],
                "fallback": bool(rec.fallback),
            }
    return [a for a in answers if a is not None]


class ServerState:
    """What one server holds; ``routing`` is read once per request."""

    def __init__(
        self,
        *,
        env: str,
        serving: ServingSection,
        project: str | None = None,
        loader: ModelLoader,
        metrics: ServerMetrics,
        request_log: RequestLog | None,
    ) -> None:
        self.env = env
        self.project = project  # the project's id, answered in /version
        self.serving = serving
        self.loader = loader
        self.metrics = metrics
        self.request_log = request_log
        self.routing = Routing()
        self.executor = ThreadPoolExecutor(serving.workers_threads, thread_name_prefix="conveyor-model")
        # loads get their own thread, so a slow load never holds up the model calls
        self.load_executor = ThreadPoolExecutor(1, thread_name_prefix="conveyor-load")
        self.recent_requests = _Recent(REMEMBERED_REQUESTS)
        self.recent_users = _Recent(REMEMBERED_REQUESTS)
        self.admin_lock = asyncio.Lock()
        self._native_limits: Any = None

    def start(self) -> None:
        """Limit native thread pools and start the request log (at app startup)."""
        self._native_limits = limit_native_threads()
        if self.request_log is not None:
            self.request_log.start()

    # -- versions -------------------------------------------------------------------------
    def serve(self, version: str, model: Model) -> Served:
        """Wrap a loaded model with its batcher (cheap; no I/O)."""
        serving = self.serving

        def observe(rows: int) -> None:
            self.metrics.batch_rows.labels(version).observe(rows)

        batcher: MicroBatcher[Any, Any]
        types: dict[str, str] | None = None
        specs: dict[str, FeatureSpec] | None = None
        if isinstance(model, Classifier):
            types = dict(model.feature_types)
            specs = dict(model.feature_specs)
            batcher = MicroBatcher(
                lambda items: classify(model, types, items),
                executor=self.executor,
                max_batch_size=serving.max_batch_size,
                max_wait_ms=serving.max_wait_ms,
                concurrency=serving.workers_threads,
                size=len,
                on_batch=observe,
            )
        elif isinstance(model, Recommender):
            batcher = MicroBatcher(
                lambda items: recommend(model, items),
                executor=self.executor,
                max_batch_size=serving.max_batch_size,
                max_wait_ms=serving.max_wait_ms,
                concurrency=serving.workers_threads,
                on_batch=observe,
            )
        else:
            raise TypeError(f"cannot serve a {type(model).__name__}: not a Classifier or Recommender")
        return Served(
            version=version,
            model=model,
            loaded_at=datetime.now(UTC),
            batcher=batcher,
            feature_types=types,
            feature_specs=specs,
        )

    def _set(self, routing: Routing) -> Routing:
        self.routing = routing  # the atomic switch: one reference assignment
        self.metrics.set_shares({v: (routing.variant(v), routing.share(v)) for v in routing.served})
        return routing

    def add(self, version: str, model: Model) -> Routing:
        """Serve an already loaded model beside the others."""
        return self._set(self.routing.with_loaded(self.serve(version, model)))

    async def load(self, version: str) -> Routing:
        """Load ``version`` through the loader in a worker thread, then add it."""
        async with self.admin_lock:
            if version in self.routing.served:
                return self.routing
            loop = asyncio.get_running_loop()
            model = await loop.run_in_executor(self.load_executor, self.loader.load, version)
            return self.add(version, model)

    async def set_traffic(self, weights: Mapping[str, float], mode: Mode, salt: str | None) -> Routing:
        async with self.admin_lock:
            return self._set(self.routing.with_traffic(weights, mode, salt))

    async def switch(self, version: str) -> Routing:
        async with self.admin_lock:
            return self._set(self.routing.with_switch(version))

    async def rollback(self) -> Routing:
        async with self.admin_lock:
            return self._set(self.routing.with_rollback())

    async def unload(self, version: str) -> Routing:
        async with self.admin_lock:
            served = self.routing.served.get(version)
            routing = self._set(self.routing.without(version))
            if served is not None:
                await served.batcher.close()
            return routing

    async def close(self) -> None:
        for served in self.routing.served.values():
            await served.batcher.close()
        self.executor.shutdown(wait=True)
        self.load_executor.shutdown(wait=True)
        if self.request_log is not None:
            self.request_log.close()
        if self._native_limits is not None:
            self._native_limits.restore_original_limits()
            self._native_limits = None
