"""The batch queue of `unionpose serve` on its own: batching, the bounded wait, a full queue, failures, stopping."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from unionpose.apps.serve.batching import BatchQueue, QueueFullError


class Recorder:
    """A batch function that doubles its items and records each batch; `gate` holds it while clear."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items: list[int]) -> list[int]:
        self.gate.wait(timeout=10)
        self.batches.append(items)
        if any(item < 0 for item in items):
            raise ValueError("negative item")
        return [2 * item for item in items]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=20))


def test_items_submitted_together_are_one_batch_and_answered_in_order():
    async def scenario():
        recorder = Recorder()
        queue = BatchQueue(recorder, max_batch=4, max_wait_s=0.5, max_size=16)
        await queue.start()
        answers = await asyncio.gather(*(queue.submit(i) for i in range(6)))
        await queue.stop()
        return recorder.batches, answers, (queue.batches, queue.items)

    batches, answers, counts = run(scenario())
    assert answers == [0, 2, 4, 6, 8, 10]
    assert batches == [[0, 1, 2, 3], [4, 5]] and counts == (2, 6)


def test_a_lone_item_waits_at_most_max_wait():
    async def scenario():
        queue = BatchQueue(Recorder(), max_batch=8, max_wait_s=0.05)
        await queue.start()
        start = time.perf_counter()
        answer = await queue.submit(21)
        seconds = time.perf_counter() - start
        await queue.stop()
        return answer, seconds

    answer, seconds = run(scenario())
    assert answer == 42 and seconds < 1.0


def test_a_full_queue_refuses_at_once_and_a_failed_batch_fails_only_its_items():
    async def scenario():
        recorder = Recorder()
        queue = BatchQueue(recorder, max_batch=1, max_wait_s=0, max_size=2)
        await queue.start()
        recorder.gate.clear()
        running = asyncio.ensure_future(queue.submit(1))
        await asyncio.sleep(0.05)                  # the worker takes item 1 into its (held) batch
        waiting = [asyncio.ensure_future(queue.submit(item)) for item in (-1, 3)]
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        with pytest.raises(QueueFullError, match="2 requests waiting"):
            await queue.submit(4)
        refused_after = time.perf_counter() - start
        recorder.gate.set()
        first = await running
        failed, third = await asyncio.gather(*waiting, return_exceptions=True)
        await queue.stop()
        return first, failed, third, refused_after

    first, failed, third, refused_after = run(scenario())
    assert first == 2 and third == 6 and refused_after < 0.05
    assert isinstance(failed, ValueError) and "negative item" in str(failed)


def test_stopping_fails_what_is_still_waiting_and_a_stopped_queue_refuses():
    async def scenario():
        recorder = Recorder()
        queue = BatchQueue(recorder, max_batch=1, max_wait_s=0, max_size=4)
        await queue.start()
        recorder.gate.clear()
        taken = asyncio.ensure_future(queue.submit(1))
        await asyncio.sleep(0.05)
        left = asyncio.ensure_future(queue.submit(2))
        await asyncio.sleep(0.05)
        stopping = asyncio.ensure_future(queue.stop())
        await asyncio.sleep(0.05)
        recorder.gate.set()                       # the batch being run finishes; the waiting item is failed
        await stopping
        outcome = await asyncio.gather(taken, left, return_exceptions=True)
        with pytest.raises(RuntimeError, match="not started"):
            await queue.submit(3)
        return outcome

    for outcome in run(scenario()):              # the batch that was running, and the item behind it
        assert isinstance(outcome, RuntimeError) and "stopped" in str(outcome)


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_batch and max_size must be at least 1"):
        BatchQueue(Recorder(), max_batch=0)
