"""The threads that decode and encode images, with a bound on waiting for one.

Uploads that are slow to decode can hold every thread; without a bound, the requests behind
them wait in the pool's queue with no answer at all. Here, past `max_waiting` requests queued
for a thread a new one is turned away at once (503), and a request whose work has not started
within `start_timeout_s` is dropped before it starts (504). Work that has started always runs
to its end, so that the memory budget held for it is released only when it is really freed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class PoolBusyError(Exception):
    """Too many requests are already waiting for a thread."""


class PoolStartTimeoutError(Exception):
    """No thread became free for the request within its deadline; its work never started."""


class IoPool:
    def __init__(self, workers: int, max_waiting: int, start_timeout_s: float) -> None:
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="genadapt-io")
        self.workers, self.max_waiting, self.start_timeout_s = workers, max_waiting, start_timeout_s
        self.in_flight = 0  # submitted and not finished; touched on the event loop only

    def waiting(self) -> int:
        """Requests queued for a thread (in flight beyond the threads)."""
        return max(0, self.in_flight - self.workers)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return (await self.run_timed(fn, *args))[0]

    async def run_timed(self, fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
        """`fn(*args)` on a thread, and the seconds it waited for that thread."""
        if self.waiting() >= self.max_waiting:
            raise PoolBusyError
        self.in_flight += 1
        submitted = time.perf_counter()
        started: list[float] = []

        def timed() -> Any:
            started.append(time.perf_counter())
            return fn(*args)

        try:
            work = self.executor.submit(timed)
            result = asyncio.wrap_future(work)
            try:
                value = await asyncio.wait_for(asyncio.shield(result), self.start_timeout_s)
            except TimeoutError:
                if work.cancel():  # still queued: it never runs
                    raise PoolStartTimeoutError from None
                value = await result  # running: bounded work, see it through
            return value, started[0] - submitted
        finally:
            self.in_flight -= 1

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)
