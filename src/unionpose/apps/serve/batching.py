"""Requests that arrive together become one model call: a bounded queue in front of one worker thread per model.

A model call costs much the same for one crop as for several (the backend runs them as one batch), so under load
answering eight waiting requests with one call beats eight calls. The queue is bounded so that an overloaded
server says so at once (`QueueFullError`, a 503) instead of letting latency and memory grow without limit, and the
wait for company is bounded so that a lone request is not held back for long.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Generic, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class QueueFullError(RuntimeError):
    """The queue holds `max_size` requests already; the caller should answer 503 and let the client retry."""


class BatchQueue(Generic[Item, Result]):
    """`await queue.submit(item)` -> its result, computed by `run_batch(items)` together with the items beside it.

    The worker takes the first waiting item, then up to `max_batch - 1` more, waiting at most `max_wait_s` for them
    to arrive; `run_batch` runs on the queue's own thread (the event loop stays free to accept and refuse requests)
    and returns one result per item, in order. While it runs, new items wait, at most `max_size` of them.
    Start and stop it inside the event loop that submits (`start()`, `stop()`).
    """

    def __init__(self, run_batch: Callable[[list[Item]], Sequence[Result]], max_batch: int = 8,
                 max_wait_s: float = 0.005, max_size: int = 64, name: str = "model") -> None:
        if max_batch < 1 or max_size < 1 or max_wait_s < 0:
            raise ValueError(f"batch queue {name!r}: max_batch and max_size must be at least 1 and max_wait_s "
                             f"at least 0; got {max_batch}, {max_size}, {max_wait_s}")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_size = max_size
        self.name = name
        self.batches = 0                 # model calls made, and the items they answered: the batching at work
        self.items = 0
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future]] | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def waiting(self) -> int:
        """Items queued and not yet taken into a batch."""
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.max_size)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{self.name}")
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """End the worker; the batch being run and the items still waiting fail with a RuntimeError."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        while self._queue is not None and not self._queue.empty():
            _fail([self._queue.get_nowait()], RuntimeError(f"batch queue {self.name!r} stopped"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)   # a running batch ends on its own
        self._queue = self._worker = self._executor = None

    async def submit(self, item: Item) -> Result:
        """The result for `item`; `QueueFullError` at once when `max_size` items are waiting already."""
        if self._queue is None:
            raise RuntimeError(f"batch queue {self.name!r} is not started")
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((item, future))
        except asyncio.QueueFull:
            raise QueueFullError(f"model {self.name!r} has {self.max_size} requests waiting; retry shortly") from None
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            live = [(item, future) for item, future in batch if not future.done()]   # skip cancelled requests
            if not live:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch, [item for item, _ in live])
            except asyncio.CancelledError:   # stopped while the model runs: its requests fail, none hangs
                _fail(live, RuntimeError(f"batch queue {self.name!r} stopped"))
                raise
            except Exception as error:   # the batch's requests all fail with the cause; the worker goes on
                _fail(live, error)
                continue
            self.batches += 1
            self.items += len(live)
            for (_, future), result in zip(live, results):
                if not future.done():
                    future.set_result(result)


def _fail(pending: list[tuple[object, asyncio.Future]], error: BaseException) -> None:
    for _, future in pending:
        if not future.done():
            future.set_exception(error)
