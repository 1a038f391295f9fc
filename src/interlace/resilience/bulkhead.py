"""A bulkhead per deployment: at most ``max_concurrent`` requests in flight, a bounded FIFO queue.

One :class:`Bulkhead` guards one deployment, inside one event loop. :meth:`Bulkhead.try_enter` is the
O(1) fast path (no await, no allocation); :meth:`Bulkhead.enter` waits for a slot in a FIFO queue of
at most ``max_queue`` waiters; ``async with bulkhead.slot(timeout=...)`` raises
:class:`~interlace.core.errors.CapacityExceeded` (503 with a Retry-After estimate) when it gets none.

A leaving request hands its slot straight to the oldest live waiter, so ``in_flight`` never exceeds
``max_concurrent`` and a newcomer never overtakes the queue. Invariant: while a live waiter exists,
every slot is taken. Cancellation-safe: a waiter cancelled (or timed out) while queued drops out of
the queue; a waiter cancelled at the moment a slot was handed to it passes the slot on.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

from interlace.core.errors import CapacityExceeded

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Bulkhead", "BulkheadSlot"]

_HOLD_WEIGHT: Final = 0.2  # EWMA weight of the newest slot hold time, for the Retry-After estimate
_MIN_RETRY_AFTER: Final = 1
_MAX_RETRY_AFTER: Final = 60


class Bulkhead:
    """Concurrency limit and bounded FIFO queue of one deployment; ``max_concurrent=None``: unbounded."""

    __slots__ = ("_hold", "_in_flight", "_limit", "_max_queue", "_waiters", "name")

    def __init__(self, max_concurrent: int | None, max_queue: int = 0, *, name: str = "") -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1 (None: unbounded), got {max_concurrent}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be at least 0, got {max_queue}")
        self.name = name
        self._limit = max_concurrent
        self._max_queue = max_queue
        self._in_flight = 0
        self._waiters: OrderedDict[asyncio.Future[None], None] = OrderedDict()
        self._hold: float | None = None  # EWMA of seconds a slot is held (measured by slot())

    @property
    def max_concurrent(self) -> int | None:
        return self._limit

    @property
    def max_queue(self) -> int:
        return self._max_queue

    @property
    def in_flight(self) -> int:
        """Slots taken (including slots handed to a waiter that has not resumed yet)."""
        return self._in_flight

    @property
    def queued(self) -> int:
        """Live waiters in the queue. O(queue length)."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def try_enter(self) -> bool:
        """Take a slot now if one is free. O(1); FIFO-fair because free slots imply an empty queue."""
        limit = self._limit
        if limit is None or self._in_flight < limit:
            self._in_flight += 1
            return True
        return False

    async def enter(self, *, timeout: float | None) -> bool:  # noqa: ASYNC109 - the queue wait's own bound
        """Take a slot, waiting up to ``timeout`` seconds in the queue.

        False at once when the queue is full (or ``timeout`` ≤ 0 and no slot is free), False when
        the timeout passes. A slot granted exactly as the timeout fires is kept (True).
        """
        if self.try_enter():
            return True
        if (timeout is not None and timeout <= 0) or not self._has_queue_room():
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[waiter] = None
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            return self._abandon(waiter)
        except BaseException:
            if self._abandon(waiter):
                self.leave()  # handed a slot as we were cancelled: pass it on
            raise
        return True

    def leave(self) -> None:
        """Give a slot back: to the oldest live waiter if any, else to the pool. O(1) amortised."""
        waiters = self._waiters
        while waiters:
            waiter, _ = waiters.popitem(last=False)
            if not waiter.done():  # skip waiters cancelled but not yet cleaned up
                waiter.set_result(None)
                return
        if self._in_flight <= 0:
            raise RuntimeError(f"Bulkhead {self.name!r}: leave() without a matching enter")
        self._in_flight -= 1

    def slot(self, *, timeout: float | None) -> BulkheadSlot:
        """``async with bulkhead.slot(timeout=...)``: hold a slot for the block, or raise CapacityExceeded."""
        return BulkheadSlot(self, timeout)

    def retry_after(self) -> int:
        """Seconds a rejected client should wait: the queue ahead drained at the observed hold time."""
        hold = self._hold
        if hold is None or self._limit is None:
            return _MIN_RETRY_AFTER
        estimate = math.ceil(hold * (self.queued + 1) / self._limit)
        return min(_MAX_RETRY_AFTER, max(_MIN_RETRY_AFTER, estimate))

    def capacity_error(self) -> CapacityExceeded:
        """The 503 for a request that got no slot, with a Retry-After estimate."""
        seconds = self.retry_after()
        who = f"Deployment '{self.name}'" if self.name else "The deployment"
        return CapacityExceeded(
            f"{who} is at capacity ({self._in_flight} requests in flight, {self.queued} queued); "
            f"retry in about {seconds}s.",
            headers={"retry-after": str(seconds)},
        )

    def observe_hold(self, seconds: float) -> None:
        """Feed one slot's hold time into the Retry-After estimate (slot() does this itself)."""
        hold = self._hold
        self._hold = seconds if hold is None else hold + _HOLD_WEIGHT * (seconds - hold)

    def _has_queue_room(self) -> bool:
        waiters = self._waiters
        if len(waiters) < self._max_queue:
            return True
        # full, perhaps of waiters cancelled but not yet cleaned up: drop those (slow path only)
        for waiter in [w for w in waiters if w.done()]:
            del waiters[waiter]
        return len(waiters) < self._max_queue

    def _abandon(self, waiter: asyncio.Future[None]) -> bool:
        """Drop a waiter that stopped waiting; True when a slot had been handed to it meanwhile."""
        if waiter.done() and not waiter.cancelled():
            return True
        self._waiters.pop(waiter, None)
        return False


class BulkheadSlot:
    """The async context manager of :meth:`Bulkhead.slot` (a class, not a generator: no overhead)."""

    __slots__ = ("_bulkhead", "_started", "_timeout")

    def __init__(self, bulkhead: Bulkhead, timeout: float | None) -> None:
        self._bulkhead = bulkhead
        self._timeout = timeout
        self._started = 0.0

    async def __aenter__(self) -> None:
        bulkhead = self._bulkhead
        if not bulkhead.try_enter() and not await bulkhead.enter(timeout=self._timeout):
            raise bulkhead.capacity_error()
        if bulkhead.max_concurrent is not None:
            self._started = time.monotonic()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        bulkhead = self._bulkhead
        if bulkhead.max_concurrent is not None:
            bulkhead.observe_hold(time.monotonic() - self._started)
        bulkhead.leave()
