"""Quota buckets of this process only: the embedded default, and the reference for the Redis store.

Every operation runs without an ``await`` between its check and its update, so it is atomic on the
event loop without a lock. Budget counters forget nothing across a restart: a counter first used in
this process is seeded with its period's spend so far from ``loader`` (the runtime reads it from the
usage read model), before its first reservation.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from interlace.security.quotas.store import Denied, Granted, Level, QuotaStore, Settled, SpendQuery

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.security.quotas.store import Bucket, Demand

__all__ = ["MemoryQuotaStore", "SpendLoader"]

log = logging.getLogger("interlace.security.quotas")

SpendLoader: TypeAlias = Callable[[SpendQuery], Awaitable[int]]
"""Reads the spend so far of a budget counter's period (nano-dollars)."""

_SWEEP_EVERY_MS = 60_000
_DAY_MS = 86_400_000


class _Window:
    """A sliding-window log: reservations oldest first, an index of them by id, and their total.

    The log is a deque of ``[time, amount, id]``, so dropping what left the window is O(1) a
    reservation. (A dict alone would serve as both log and index, but CPython finds a dict's first
    live key by walking past every slot deleted before it: trimming the front of a busy window made
    each request cost in proportion to the requests of the last minute.) A refunded reservation
    keeps its place with amount 0 until it leaves the front.
    """

    __slots__ = ("index", "log", "total", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.log: deque[list[Any]] = deque()
        self.index: dict[str, list[Any]] = {}
        self.total = 0

    def add(self, reservation: str, now_ms: int, amount: int) -> None:
        entry = [now_ms, amount, reservation]
        self.log.append(entry)
        self.index[reservation] = entry
        self.total += amount

    def settle(self, reservation: str, actual: int) -> bool:
        """Set a reservation's amount (0 refunds it); False when it is unknown or left the window."""
        entry = self.index.get(reservation)
        if entry is None:
            return False
        self.total += actual - entry[1]
        entry[1] = actual
        if actual <= 0:
            del self.index[reservation]
        return True

    def trim(self, now_ms: int) -> None:
        cutoff = now_ms - self.window_ms
        log, index = self.log, self.index
        while log:
            entry = log[0]
            at, amount, reservation = entry
            refunded = amount <= 0 and reservation not in index  # a live reservation may hold 0 for now
            if at > cutoff and not refunded:
                break
            log.popleft()
            self.total -= amount
            if index.get(reservation) is entry:
                del index[reservation]

    def wait_ms(self, now_ms: int, amount: int, limit: int) -> int:
        """Milliseconds until ``amount`` fits, as reservations leave the window; -1 never."""
        if amount > limit:
            return -1
        need = self.total + amount - limit
        for at, reserved, _ in self.log:
            need -= reserved
            if need <= 0:
                return int(at) + self.window_ms - now_ms
        return self.window_ms

    def reset_ms(self, now_ms: int) -> int:
        """Milliseconds until the oldest reservation leaves the window (-1: none); call after trim."""
        return int(self.log[0][0]) + self.window_ms - now_ms if self.log else -1


class _Counter:
    """A period's spend: settled, plus the reservations still open."""

    __slots__ = ("ends_ms", "open", "settled", "total")

    def __init__(self, ends_ms: int | None, settled: int) -> None:
        self.ends_ms = ends_ms
        self.open: dict[str, int] = {}
        self.settled = settled
        self.total = settled


class MemoryQuotaStore(QuotaStore):
    """Buckets in this process; counters seeded from ``loader`` on first use."""

    def __init__(self, loader: SpendLoader | None = None) -> None:
        self._loader = loader
        self._windows: dict[str, _Window] = {}
        self._counters: dict[str, _Counter] = {}
        self._loading: dict[str, asyncio.Future[int]] = {}
        self._swept_at = 0

    async def reserve(self, reservation: str, demands: Sequence[Demand], now_ms: int) -> Granted | Denied:
        for demand in demands:  # the only awaits: seeding counters, before the atomic part
            bucket = demand.bucket
            if bucket.window_ms is None and bucket.name not in self._counters:
                await self._seed(bucket)
        self._sweep(now_ms, keep={d.bucket.name for d in demands})
        states = [self._state(d.bucket, now_ms) for d in demands]
        denied: int | None = None
        longest = 0
        for index, (demand, state) in enumerate(zip(demands, states, strict=True)):
            limit = demand.bucket.limit
            if state.total + demand.amount <= limit:
                continue
            if isinstance(state, _Window):
                wait = state.wait_ms(now_ms, demand.amount, limit)
            else:
                ends = state.ends_ms
                wait = ends - now_ms if ends is not None and demand.amount <= limit else -1
            if denied is None:
                denied = index
            longest = -1 if wait < 0 or longest < 0 else max(longest, wait)
        if denied is not None:
            return Denied(denied, states[denied].total, longest)
        levels: list[Level] = []
        for demand, state in zip(demands, states, strict=True):
            if isinstance(state, _Window):
                state.add(reservation, now_ms, demand.amount)
                levels.append(Level(state.total, state.reset_ms(now_ms)))
            else:
                state.total += demand.amount
                state.open[reservation] = demand.amount
                ends = state.ends_ms
                levels.append(Level(state.total, -1 if ends is None else ends - now_ms, state.settled))
        return Granted(tuple(levels))

    async def settle(self, reservation: str, demands: Sequence[Demand], now_ms: int) -> tuple[Settled, ...]:
        out: list[Settled] = []
        for demand in demands:
            name, actual = demand.bucket.name, demand.amount
            window = self._windows.get(name)
            if window is not None:
                window.trim(now_ms)  # a reservation that left the window is no longer settled
                out.append(Settled(0, 0) if window.settle(reservation, actual) else Settled(-1, -1))
                continue
            counter = self._counters.get(name)
            reserved = None if counter is None else counter.open.pop(reservation, None)
            if counter is None or reserved is None:
                out.append(Settled(-1, -1))
                continue
            before = counter.settled
            counter.total += actual - reserved
            counter.settled += actual
            out.append(Settled(before, counter.settled))
        return tuple(out)

    async def used(self, bucket: Bucket, now_ms: int) -> tuple[int, int]:
        if bucket.window_ms is not None:
            window = self._windows.get(bucket.name)
            if window is None:
                return 0, 0
            window.trim(now_ms)
            return window.total, 0
        if bucket.name not in self._counters:
            await self._seed(bucket)
        counter = self._counters[bucket.name]
        return counter.total, counter.settled

    def _state(self, bucket: Bucket, now_ms: int) -> _Window | _Counter:
        if bucket.window_ms is None:
            return self._counters[bucket.name]
        window = self._windows.get(bucket.name)
        if window is None:
            window = self._windows[bucket.name] = _Window(bucket.window_ms)
        window.trim(now_ms)
        return window

    async def _seed(self, bucket: Bucket) -> None:
        """Create a counter with its period's spend so far (once, however many requests wait for it)."""
        name = bucket.name
        pending = self._loading.get(name)
        if pending is None:
            pending = self._loading[name] = asyncio.ensure_future(self._load(bucket))
        try:
            spent = await asyncio.shield(pending)
        finally:
            if pending.done():
                self._loading.pop(name, None)
        if name not in self._counters:
            self._counters[name] = _Counter(bucket.ends_ms, spent)

    async def _load(self, bucket: Bucket) -> int:
        if self._loader is None or bucket.seed is None:
            return 0
        try:
            return max(await self._loader(bucket.seed), 0)
        except Exception:  # a budget must still work when the usage log cannot be read
            log.exception("could not read the spend of %s so far; counting it from 0", bucket.name)
            return 0

    def _sweep(self, now_ms: int, keep: set[str]) -> None:
        """Forget windows with nothing left in them and counters of periods over a day ago."""
        if now_ms - self._swept_at < _SWEEP_EVERY_MS:
            return
        self._swept_at = now_ms
        for name, window in list(self._windows.items()):
            window.trim(now_ms)
            if not window.log:
                del self._windows[name]
        for name, counter in list(self._counters.items()):
            old = counter.ends_ms is not None and counter.ends_ms + _DAY_MS < now_ms
            if old and not counter.open and name not in keep:
                del self._counters[name]
