"""The in-process sliding window against a plain log of every reservation, over many windows.

The store sums reservations per millisecond in a ring of arrays; the reference keeps each reservation
with its time and amount, the way the port's contract describes a window. Both must agree on what is
counted, on refusals and their retry times, and on reset times, at every step of a long random run
that wraps the ring many times and grows and shrinks it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from interlace.security.quotas import Bucket, Demand, Denied, Granted, Level, MemoryQuotaStore, Settled

T0 = 1_700_000_000_000
WINDOW = 1_000


@dataclass
class _Entry:
    at: int
    amount: int
    open: bool


class _Reference:
    """One entry per reservation; an entry counts while ``at > now - WINDOW``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.log: dict[str, _Entry] = {}

    def live(self, now: int) -> list[_Entry]:
        for reservation in [r for r, e in self.log.items() if e.at <= now - WINDOW]:
            del self.log[reservation]  # gone for good: never counted, never settled again
        return sorted(self.log.values(), key=lambda e: e.at)

    def used(self, now: int) -> int:
        return sum(e.amount for e in self.live(now))

    def reserve(self, reservation: str, amount: int, now: int) -> Granted | Denied:
        used = self.used(now)
        if used + amount > self.limit:
            if amount > self.limit:
                return Denied(0, used, -1)
            need, wait = used + amount - self.limit, WINDOW
            for entry in self.live(now):
                need -= entry.amount
                if need <= 0:
                    wait = entry.at + WINDOW - now
                    break
            return Denied(0, used, wait)
        self.log[reservation] = _Entry(now, amount, open=True)
        # the oldest millisecond that still frees something, or holds an open reservation
        kept = [e for e in self.live(now) if e.amount > 0 or e.open]
        return Granted((Level(used + amount, kept[0].at + WINDOW - now),))

    def settle(self, reservation: str, actual: int, now: int) -> bool:
        entry = self.log.get(reservation)
        self.live(now)
        if entry is None or not entry.open or entry.at <= now - WINDOW:
            return False
        entry.amount, entry.open = actual, False
        return True


async def test_the_window_agrees_with_a_log_of_every_reservation() -> None:
    rng = random.Random(20261127)
    limit = 400
    bucket = Bucket("w", limit, WINDOW)
    store, reference = MemoryQuotaStore(), _Reference(limit)
    now, open_ids, sizes = T0, [], set()
    for step in range(30_000):
        now += rng.choice((0, 0, 0, 1, 1, 2, 5, 40))  # several reservations a millisecond, and gaps
        if open_ids and rng.random() < 0.45:
            reservation = open_ids.pop(rng.randrange(len(open_ids)))
            actual = rng.choice((0, 1, 3, 7))
            settled = await store.settle(reservation, [Demand(bucket, actual)], now)
            expected = reference.settle(reservation, actual, now)
            assert settled == ((Settled(0, 0),) if expected else (Settled(-1, -1),)), step
        else:
            reservation, amount = f"r{step}", rng.choice((0, 1, 1, 2, 5, 9))
            outcome = await store.reserve(reservation, [Demand(bucket, amount)], now)
            assert outcome == reference.reserve(reservation, amount, now), step
            if isinstance(outcome, Granted):
                open_ids.append(reservation)
        if step % 97 == 0:
            assert await store.used(bucket, now) == (reference.used(now), 0), step
        sizes.add(len(store._windows["w"].times))
    window = store._windows["w"]
    assert window.first > 10 * len(window.times)  # the ring wrapped many times
    assert len(sizes) >= 3  # and was resized
    assert await store.used(bucket, now + WINDOW) == (0, 0)


async def test_memory_follows_the_window_not_the_requests() -> None:
    """Many reservations a millisecond keep one slot a millisecond, and none once settled."""
    bucket = Bucket("busy", 10**12, 60_000)
    store = MemoryQuotaStore()
    for i in range(100_000):
        now = T0 + i // 4  # four requests a millisecond, settled at once
        assert isinstance(await store.reserve(f"r{i}", [Demand(bucket, 1)], now), Granted)
        await store.settle(f"r{i}", [Demand(bucket, 1)], now)
    window = store._windows["busy"]  # the footprint is what this test is about
    assert window.next - window.first == 25_000  # one slot a millisecond
    assert len(window.times) == 32_768
    assert not window.open
    assert await store.used(bucket, T0 + 25_000) == (100_000, 0)


async def test_a_steady_load_allocates_nothing_and_a_quiet_one_shrinks_the_ring() -> None:
    """Busy every millisecond for five minutes: past the first minute the ring is neither grown nor
    moved (reallocating half a megabyte every few seconds fragmented the C heap); when the load drops
    to one request a second it shrinks to what it holds."""
    store = MemoryQuotaStore()
    bucket = Bucket("w", 10**9, 60_000)
    rings = set()
    for now in range(T0, T0 + 300_000):
        reservation = f"r{now}"
        await store.reserve(reservation, [Demand(bucket, 1)], now)
        await store.settle(reservation, [Demand(bucket, 1)], now)
        if now >= T0 + 60_000:
            rings.add(id(store._windows["w"].times))
    window = store._windows["w"]
    assert len(rings) == 1
    assert len(window.times) == 65_536  # the next power of two of 60,001 slots
    for now in range(T0 + 300_000, T0 + 420_000, 1_000):
        await store.reserve(f"q{now}", [Demand(bucket, 1)], now)
    assert len(window.times) <= 512
    assert await store.used(bucket, T0 + 420_000) == (59, 0)  # those of the last minute
