"""Adaptive micro-batching: concurrent requests grouped into one model call in a worker thread.

A consumer task per served version takes requests from a queue. A request that finds
the model idle and nothing queued goes out at once (no added latency); while other
calls are in flight, or when requests were already waiting as a call ended (the
server is under load), the batch keeps filling for up to ``max_wait_ms`` or until it
holds ``max_batch_size`` rows. So the batch size adapts to the load, as in Triton's
dynamic batcher. The model runs in a thread pool, never on the event loop; each
caller awaits its own future and gets its own slice of the answer.

Hand-written rather than taken from a library: the well-known batchers live inside
servers (Triton, BentoML, Ray Serve) and cannot be used alone; this is one class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Generic, TypeVar

from conveyor.errors import ServiceError

T = TypeVar("T")
R = TypeVar("R")

_STOP: Any = object()


class BatcherClosed(ServiceError):
    """The version this request was routed to was unloaded; route again."""


class MicroBatcher(Generic[T, R]):
    """Groups concurrent ``submit`` calls into one ``fn(items)`` call.

    ``fn`` returns one result per item, in order; ``size(item)`` counts the rows of an
    item (an item larger than ``max_batch_size`` runs alone). ``concurrency`` calls
    may run at once; ``on_batch(rows)`` is told the size of each call.
    """

    def __init__(
        self,
        fn: Callable[[Sequence[T]], Sequence[R]],
        *,
        executor: Executor,
        max_batch_size: int,
        max_wait_ms: float,
        concurrency: int = 1,
        size: Callable[[T], int] = lambda _item: 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.fn = fn
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.concurrency = concurrency
        self.size = size
        self.on_batch = on_batch
        self._queue: asyncio.Queue[Any] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._running = 0  # model calls in flight (``_calls`` drops a finished call one loop turn later)
        self._closed = False

    async def submit(self, item: T) -> R:
        """The result for ``item``; raises what ``fn`` raised for it."""
        if self._closed:
            raise BatcherClosed("model version was unloaded")
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._consumer = loop.create_task(self._consume(self._queue))
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def close(self) -> None:
        """Answer everything queued, then stop; later submits raise BatcherClosed."""
        self._closed = True
        if self._queue is not None and self._consumer is not None:
            self._queue.put_nowait(_STOP)
            await self._consumer
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)

    async def _consume(self, queue: asyncio.Queue[Any]) -> None:
        loop = asyncio.get_running_loop()
        free = asyncio.Semaphore(self.concurrency)
        carried: Any = None
        while True:
            slots_were_full = free.locked()
            await free.acquire()
            # requests that waited for a model call to end mean the server is under load
            backlog = slots_were_full and (carried is not None or not queue.empty())
            first = carried if carried is not None else await queue.get()
            carried = None
            if first is _STOP:
                free.release()
                return
            batch = [first]
            rows = self.size(first[0])
            # Keep filling for up to max_wait_ms while another call runs or under load: a
            # fuller call is cheaper per row (a 100-tree forest: 815 against 505 requests/s
            # at 8 connections, measured). A request that finds the model idle goes at once.
            busy = self._running > 0 or backlog
            deadline = loop.time() + self.max_wait_ms / 1000.0
            while rows < self.max_batch_size:
                if not queue.empty():
                    nxt = queue.get_nowait()
                elif busy and (remaining := deadline - loop.time()) > 0:
                    try:
                        nxt = await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        break
                else:
                    break
                if nxt is _STOP or rows + self.size(nxt[0]) > self.max_batch_size:
                    carried = nxt
                    break
                batch.append(nxt)
                rows += self.size(nxt[0])
            self._running += 1
            call = loop.create_task(self._call(batch, rows, free))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    async def _call(self, batch: list[Any], rows: int, free: asyncio.Semaphore) -> None:
        loop = asyncio.get_running_loop()
        items = [item for item, _ in batch]
        try:
            if self.on_batch is not None:
                self.on_batch(rows)
            try:
                results = await loop.run_in_executor(self.executor, self.fn, items)
                if len(results) != len(items):
                    raise ServiceError(f"model returned {len(results)} results for {len(items)} requests")
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc=exc)
                    return
                # one bad item must not fail its neighbours: answer each alone
                for item, future in batch:
                    try:
                        (result,) = await loop.run_in_executor(self.executor, self.fn, [item])
                    except Exception as item_exc:
                        _settle(future, exc=item_exc)
                    else:
                        _settle(future, result=result)
                return
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result=result)
        finally:
            self._running -= 1
            free.release()


def _settle(future: asyncio.Future[Any], *, result: Any = None, exc: BaseException | None = None) -> None:
    if future.done():  # the caller went away (client disconnected)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
