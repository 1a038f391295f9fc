"""Quota buckets of this process only: the embedded default, and the reference for the Redis store.

Every operation runs without an ``await`` between its check and its update, so it is atomic on the
event loop without a lock. Budget counters forget nothing across a restart: a counter first used in
this process is seeded with its period's spend so far from ``loader`` (the runtime reads it from the
usage read model), before its first reservation.
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

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
    """A sliding window, exact to the millisecond, in memory bounded by the window's length.

    The amounts reserved are summed per millisecond in which something was reserved, oldest first, in
    a ring of two arrays of 64-bit integers (16 bytes a millisecond, however many requests it saw,
    where a log of reservations cost about 200 bytes a request: 130 MiB a minute for four buckets at
    2,700 req/s). Milliseconds get sequence numbers; ``seq & mask`` is a millisecond's slot. The ring
    doubles when full and halves when an eighth full, so under a steady load it allocates nothing:
    arrays that grew at the back and were cut at the front were reallocated every few seconds, and
    blocks of half a megabyte moving through the C heap left it fragmented (RSS +16 % over a million
    requests, with the same bytes in use). A window of ``window_ms`` holds at most ``window_ms + 1``
    milliseconds, so its ring is at most the next power of two of that.

    Open reservations (reserved, not yet settled) are indexed by id with their millisecond's sequence
    number, so settling moves the amount within that millisecond and it leaves the window with it;
    a settled reservation leaves the index (settling it again finds nothing, as the port documents).
    A millisecond left with nothing in it and no open reservation leaves the front early, so the reset
    time never names one that frees nothing.
    """

    __slots__ = ("amounts", "first", "mask", "next", "open", "pinned", "times", "total", "window_ms")

    _SMALLEST = 16
    """Slots in a new ring, and the fewest it shrinks to."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.times = array("q", bytes(8 * self._SMALLEST))
        self.amounts = array("q", bytes(8 * self._SMALLEST))
        self.mask = self._SMALLEST - 1
        self.first = 0
        """Sequence number of the oldest millisecond still in the window."""
        self.next = 0
        """Sequence number the next new millisecond gets."""
        self.open: dict[str, tuple[int, int]] = {}
        """Open reservation -> (its millisecond's sequence number, its amount)."""
        self.pinned: dict[int, int] = {}
        """Sequence number -> open reservations in that millisecond."""
        self.total = 0

    @property
    def empty(self) -> bool:
        return self.first == self.next and not self.open

    def add(self, reservation: str, now_ms: int, amount: int) -> None:
        seq = self.next - 1
        if seq >= self.first and self.times[seq & self.mask] >= now_ms:  # same ms (or a clock step back)
            self.amounts[seq & self.mask] += amount
        else:
            if self.next - self.first > self.mask:
                self._resize(2 * (self.mask + 1))
            seq = self.next
            self.next = seq + 1
            self.times[seq & self.mask] = now_ms
            self.amounts[seq & self.mask] = amount
        self.open[reservation] = (seq, amount)
        self.pinned[seq] = self.pinned.get(seq, 0) + 1
        self.total += amount

    def settle(self, reservation: str, actual: int) -> bool:
        """Set an open reservation's amount (0 refunds it); False when unknown, settled or gone."""
        found = self.open.pop(reservation, None)
        if found is None:
            return False
        seq, reserved = found
        self._unpin(seq)
        if seq < self.first:  # its millisecond left the window (trim runs first: cannot happen)
            return False
        self.amounts[seq & self.mask] += actual - reserved
        self.total += actual - reserved
        return True

    def trim(self, now_ms: int) -> None:
        cutoff = now_ms - self.window_ms
        times, amounts, pinned, mask = self.times, self.amounts, self.pinned, self.mask
        first, end = self.first, self.next
        orphans = False
        while first < end:
            amount, held = amounts[first & mask], first in pinned
            if times[first & mask] > cutoff and (amount > 0 or held):
                break
            self.total -= amount
            orphans = orphans or held
            first += 1
        self.first = first
        if orphans:  # open reservations whose millisecond left the window can no longer be settled
            for reservation, (seq, _) in list(self.open.items()):
                if seq < first:
                    del self.open[reservation]
                    self._unpin(seq)
        if mask >= self._SMALLEST and (end - first) * 8 <= mask + 1:
            self._resize((mask + 1) // 2)

    def _resize(self, slots: int) -> None:
        """Move the live milliseconds into a ring of ``slots`` (a power of two that holds them)."""
        count, mask = self.next - self.first, slots - 1
        self.times = _moved(self.times, self.first & self.mask, count, self.first & mask, slots)
        self.amounts = _moved(self.amounts, self.first & self.mask, count, self.first & mask, slots)
        self.mask = mask

    def _unpin(self, seq: int) -> None:
        left = self.pinned[seq] - 1
        if left:
            self.pinned[seq] = left
        else:
            del self.pinned[seq]

    def wait_ms(self, now_ms: int, amount: int, limit: int) -> int:
        """Milliseconds until ``amount`` fits, as reservations leave the window; -1 never."""
        if amount > limit:
            return -1
        need = self.total + amount - limit
        times, amounts, mask = self.times, self.amounts, self.mask
        for seq in range(self.first, self.next):
            need -= amounts[seq & mask]
            if need <= 0:  # at most the window, should now be a little behind a reservation's time
                return min(times[seq & mask] + self.window_ms - now_ms, self.window_ms)
        return self.window_ms

    def reset_ms(self, now_ms: int) -> int:
        """Milliseconds until the oldest reservation leaves the window (-1: none); call after trim."""
        if self.first == self.next:
            return -1
        return min(self.times[self.first & self.mask] + self.window_ms - now_ms, self.window_ms)


def _moved(ring: array[int], start: int, count: int, to: int, slots: int) -> array[int]:
    """``count`` values of ``ring`` from ``start`` (wrapping), in a new ring of ``slots`` from ``to``."""
    live = ring[start : start + count]
    if len(live) < count:
        live += ring[: count - len(live)]
    moved = array("q", bytes(8 * slots))
    fits = min(count, slots - to)
    moved[to : to + fits] = live[:fits]
    moved[: count - fits] = live[fits:]
    return moved


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
        if now_ms - self._swept_at >= _SWEEP_EVERY_MS:
            self._sweep(now_ms, demands)
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
        return self.settle_at_once(reservation, demands, now_ms)

    def settle_at_once(self, reservation: str, demands: Sequence[Demand], now_ms: int) -> tuple[Settled, ...]:
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

    def _sweep(self, now_ms: int, demands: Sequence[Demand]) -> None:
        """Forget windows with nothing left in them and counters of periods over a day ago (each minute)."""
        self._swept_at = now_ms
        keep = {demand.bucket.name for demand in demands}  # counters this request is about to use
        for name, window in list(self._windows.items()):
            window.trim(now_ms)
            if window.empty:
                del self._windows[name]
        for name, counter in list(self._counters.items()):
            old = counter.ends_ms is not None and counter.ends_ms + _DAY_MS < now_ms
            if old and not counter.open and name not in keep:
                del self._counters[name]
