"""The service's memory budget: image decodes and encodes hold bytes from it while they run.

A request states what it may need at its peak, computed from the image header before a pixel
is decoded (`genadapt.imaging.decode_cost`) or from the output size; it waits until that fits
beside what the others hold. A request that could never fit is refused (413); one that waits
past its time is refused (503). A response body is held until it has been sent, so that clients
that never read their answers cannot pile them up outside the budget. After a large hold the C
allocator is asked to give memory back to the system, so that one spike does not stay in the
process's resident size for good.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)
TRIM_AFTER_BYTES = 64 << 20  # this much released since the last malloc_trim: trim once all are done


class OverBudgetError(Exception):
    """More bytes than the whole budget: this request can never run."""


class BudgetTimeoutError(Exception):
    """The budget did not free up in time."""


class MemoryBudget:
    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.used = 0
        self.peak = 0  # the most ever held at once (tests and metrics read it)
        self._changed = asyncio.Condition()
        self._released_since_trim = 0

    @asynccontextmanager
    async def hold(self, nbytes: int, timeout_s: float) -> AsyncIterator[None]:
        """Hold `nbytes` of the budget for the block; wait up to `timeout_s` for room."""
        await self.acquire(nbytes, timeout_s)
        try:
            yield
        finally:
            await self.release(nbytes)

    async def acquire(self, nbytes: int, timeout_s: float) -> None:
        """Take `nbytes` once they fit beside what others hold (413 or 503 errors otherwise);
        every acquire is paired with one `release`."""
        if nbytes > self.limit:
            raise OverBudgetError(
                f"this image needs about {nbytes / 2**20:.0f} MB to process, more than the "
                f"service's memory budget of {self.limit / 2**20:.0f} MB"
            )
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.used + nbytes <= self.limit), timeout_s
                )
            except TimeoutError:
                raise BudgetTimeoutError from None
            self.used += nbytes
            self.peak = max(self.peak, self.used)

    async def release(self, nbytes: int) -> None:
        async with self._changed:
            self.used -= nbytes
            # Many small holds (answers to slow readers) add up as much as one large one.
            self._released_since_trim += nbytes
            trim = self.used == 0 and self._released_since_trim >= TRIM_AFTER_BYTES
            if trim:
                self._released_since_trim = 0
            self._changed.notify_all()
        if trim:
            await asyncio.to_thread(release_free_memory)


_libc = None


def release_free_memory() -> bool:
    """glibc's malloc_trim(0): hand freed heap pages back to the system (a no-op elsewhere)."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        _libc = ctypes.CDLL(name) if name else False
    if not _libc or not hasattr(_libc, "malloc_trim"):
        return False
    _libc.malloc_trim(0)
    return True
